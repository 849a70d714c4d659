"""Quantized weight and activation formats: quantize, dequantize, pack and unpack.

One module per format family; each function states its layout and cites the public code its
convention was checked against. The GEMM references (`sglang.ops.gemm*`), their case
generators and the weight loaders all use these helpers, so a format is defined once.

  int8   symmetric per-token / per-channel int8 (W8A8)
  fp8    float8_e4m3fn: per-tensor, per-channel / per-token, 2-D block and per-token-group
  int4   group-wise asymmetric int4 in the AutoAWQ GEMM and AutoGPTQ (v1, exllama) packings
  fp4    e2m1 codes two per byte, with NVFP4 (e4m3 block-16 + fp32 global) or MXFP4 (e8m0
         block-32) scales

Every helper is plain torch, runs on any device, and computes in float32 (float64 when given
float64), like the references.
"""
