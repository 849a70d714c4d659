"""The core never names a device or a vendor library: every device-specific thing comes from a
backend. This test reads every .py file under core/ as Python tokens, so comments and
docstrings may explain what backends do (they are prose), while code may not do it.

Refused in code:
- attribute access to a device namespace: `.cuda` (torch.cuda, x.cuda(), torch.version.cuda),
  `.hip`, `.xpu`, `.npu`, `.mps`, `.xla`;
- the names `is_cuda`, `is_hip`, `triton`, and vendor modules (torch_npu, torch_xla,
  intel_extension_for_pytorch, flashinfer, sgl_kernel, ...) anywhere in code;
- importing a vendor module (`import aiter`, `from triton import ...`); the builtin `aiter()`
  stays usable;
- a string literal that is a device or vendor name (device="cuda", "cuda:0", "nccl", ...).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"

DEVICE_ATTRIBUTES = {"cuda", "hip", "xpu", "npu", "mps", "xla"}
VENDOR_MODULES = {
    "triton",
    "torch_npu",
    "torch_xla",
    "intel_extension_for_pytorch",
    "aiter",
    "flashinfer",
    "sgl_kernel",
    "deep_gemm",
    "pynvml",
    "cupy",
    "jax",
    "habana_frameworks",
}
BANNED_NAMES = {"is_cuda", "is_hip"} | (VENDOR_MODULES - {"aiter"})  # aiter() is a builtin
BANNED_STRING = re.compile(
    r"(cuda|hip|rocm|xpu|npu|mps|xla|tpu|nccl|rccl|hccl)(:\d+)?|"
    + "|".join(sorted(VENDOR_MODULES | {"amd-aiter", "torch-npu", "torch-xla"})),
    re.IGNORECASE,
)
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def code_tokens(source: str) -> list[tokenize.TokenInfo]:
    """Tokens of code, without comments and docstrings (a string that is a whole statement)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    kept = []
    statement_start = True
    for i, tok in enumerate(tokens):
        if tok.type in SKIP:
            statement_start = statement_start or tok.type in (
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
            )
            continue
        if tok.type == tokenize.STRING and statement_start:
            following = next((t for t in tokens[i + 1 :] if t.type != tokenize.NL), None)
            if following is None or following.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                continue  # a docstring or a bare string statement: prose
        statement_start = False
        kept.append(tok)
    return kept


def string_value(tok: tokenize.TokenInfo) -> str | None:
    try:
        value = ast.literal_eval(tok.string)
    except (ValueError, SyntaxError):  # f-strings
        return None
    return value if isinstance(value, str) else None


def violations(path: Path, root: Path = CORE.parent) -> list[str]:
    """Each offence in `path` as "file:line: what", the file named relative to `root`."""
    tokens = code_tokens(path.read_text())
    found = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        where = f"{path.relative_to(root)}:{tok.start[0]}"
        if tok.type == tokenize.NAME:
            after = prev.string if prev is not None else ""
            if after == "." and tok.string in DEVICE_ATTRIBUTES:
                found.append(f"{where}: device attribute .{tok.string}")
            elif after in ("import", "from") and tok.string in VENDOR_MODULES:
                found.append(f"{where}: imports {tok.string}")
            elif tok.string in BANNED_NAMES:
                found.append(f"{where}: names {tok.string}")
        elif tok.type == tokenize.STRING:
            value = string_value(tok)
            if value is not None and BANNED_STRING.fullmatch(value.strip()):
                found.append(f"{where}: string {tok.string}")
    return found


def test_core_names_no_device():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10, f"core sources not found under {CORE}"
    found = [v for path in files for v in violations(path)]
    assert not found, "core code names a device or vendor library:\n" + "\n".join(found)


def test_the_check_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Docstrings may say torch.cuda and import triton."""\n'
        "import torch  # comments may say torch.cuda too\n"
        "x = torch.cuda.is_available()\n"
        "y = t.cuda()\n"
        "z = t.is_cuda\n"
        "import triton\n"
        "from aiter import ops\n"
        'w = torch.empty(1, device="cuda")\n'
        "v = torch.device('cuda:1')\n"
        "u = torch.version.hip\n"
        "def f():\n"
        '    """nccl in a docstring is prose."""\n'
        '    return "gloo", aiter([])\n'
    )
    lines = violations(bad, tmp_path)
    assert lines[0] == "bad.py:3: device attribute .cuda"
    found = [v.split(": ", 1)[1] for v in lines]
    assert found == [
        "device attribute .cuda",
        "device attribute .cuda",
        "names is_cuda",
        "imports triton",
        "imports aiter",
        'string "cuda"',
        "string 'cuda:1'",
        "device attribute .hip",
    ]
