"""Helpers of the frontend-language tests (a module of its own: conftest is not importable
under one name when several test directories have one)."""

from __future__ import annotations


def post(url: str, path: str, body: dict):
    import json
    import urllib.request

    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as r:
        return json.loads(r.read())
