"""What the frontend examples share: the backend from the command line (a running server with
--url, otherwise an in-process engine on the default model)."""

from __future__ import annotations

import argparse

import sglang as sgl


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--url",
        help="a running server, e.g. http://127.0.0.1:30000 "
        "(default: start an in-process engine on the default model)",
    )
    p.add_argument("--model-path", help="model for the in-process engine (default model)")
    p.add_argument("--device", default="auto", help="device of the in-process engine")
    return p


def backend(args: argparse.Namespace) -> sgl.Backend:
    if args.url:
        return sgl.RuntimeEndpoint(args.url)
    return sgl.Runtime(model_path=args.model_path, device=args.device, log_level="warning")
