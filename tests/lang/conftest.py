"""Fixtures for the frontend-language tests: the real server on the default model (started once
per session, shared by every test here), its URL, and the helpers of tests/server and
tests/engine on the import path."""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for sub in ("server", "engine"):
    path = os.path.join(HERE, "..", sub)
    if path not in sys.path:
        sys.path.insert(0, path)

# float32: `select` scores choices in one batch and the tests compare with requests sent
# alone, equal only where rounding does not depend on the batch (not so in bfloat16).
SERVER_ARGS = ("--max-total-tokens", "16384", "--max-running-requests", "64", "--dtype", "float32")


@pytest.fixture(scope="session")
def url() -> str:
    """A fresh server (or, for quick iteration, the one at $SGLANG_LANG_TEST_URL)."""
    if os.environ.get("SGLANG_LANG_TEST_URL"):
        yield os.environ["SGLANG_LANG_TEST_URL"].rstrip("/")
        return
    from server_process import ServerProcess

    server = ServerProcess(*SERVER_ARGS)
    yield server.base_url
    server.stop()


@pytest.fixture(scope="session")
def backend(url):
    import sglang as sgl

    return sgl.RuntimeEndpoint(url)


@pytest.fixture(scope="session")
def constrained(url) -> bool:
    """Whether the server constrains generation to a regex (structured outputs are being
    built at the same time as the frontend language; tests that need them skip without)."""
    import re
    import urllib.error

    from lang_helpers import post

    body = {
        "text": "Reply with a three-digit number and nothing else. Number:",
        "sampling_params": {"max_new_tokens": 8, "temperature": 0, "regex": "[0-9]{3}"},
    }
    try:
        text = post(url, "/generate", body)["text"]
    except urllib.error.HTTPError:
        return False
    return re.fullmatch("[0-9]{3}", text) is not None
