"""The one error a quantized checkpoint raises (kept free of torch: the CLI imports it)."""


class QuantizationError(ValueError):
    """A checkpoint that does not match its declared format (missing or misshapen tensor,
    unknown method, a format the backend cannot run): the message is the one startup line."""
