"""A small JSON-over-HTTP client on the standard library (thread-safe: a connection per call),
with server errors raised as exceptions that carry the server's message."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


class HTTPError(RuntimeError):
    def __init__(self, url: str, status: int, message: str):
        super().__init__(f"{url} returned HTTP {status}: {message}")
        self.url, self.status, self.message = url, status, message


class JSONClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 3600):
        self.base_url, self.api_key, self.timeout = base_url.rstrip("/"), api_key, timeout

    def _open(self, method: str, path: str, body: Any = None):
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise HTTPError(url, e.code, _message(e.read())) from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach {url}: {e.reason}") from None

    def get(self, path: str) -> Any:
        with self._open("GET", path) as r:
            return _decode(r.read())

    def post(self, path: str, body: Any) -> Any:
        with self._open("POST", path, body) as r:
            return _decode(r.read())

    def post_sse(self, path: str, body: Any) -> Iterator[Any]:
        """The `data:` events of a server-sent-event response, decoded, until [DONE]."""
        with self._open("POST", path, body) as r:
            for raw in r:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = json.loads(payload)
                if isinstance(event, dict) and "error" in event:
                    raise HTTPError(self.base_url + path, 500, _message(payload.encode()))
                yield event


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def _message(raw: bytes) -> str:
    body = _decode(raw)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return str(body)
