"""Datasette's test client as the web view's tests use it (the plugin registered)."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any


def get_ok(ds: Any, path: str) -> Any:
    """The response to GET ``path``, which must be 200 (the page's end shown otherwise)."""

    async def go() -> Any:
        return await ds.client.get(path)

    response = asyncio.run(go())
    assert response.status_code == 200, response.text[-2000:]
    return response


def text_of(page: str) -> str:
    """What a reader sees: the page without its tags, scripts and spacing."""
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
