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

SERVER_ARGS = ("--max-total-tokens", "32768", "--max-running-requests", "64")


@pytest.fixture(scope="session")
def lang_server():
    from server_process import ServerProcess

    s = ServerProcess(*SERVER_ARGS)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def url(lang_server) -> str:
    return lang_server.base_url


@pytest.fixture(scope="session")
def backend(url):
    import sglang as sgl

    return sgl.RuntimeEndpoint(url)
