"""`python -m sglang.launch_server --model-path ...` (SGLang's entry point; same as `sglang serve`)."""

from __future__ import annotations

import sys

from sglang.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
