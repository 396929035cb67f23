"""Request body size limit, enforced before the application parses anything."""

from __future__ import annotations

import json

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodySizeLimitMiddleware:
    """ASGI middleware that responds with 413 to a request body over ``max_body_bytes``.

    A declared Content-Length over the limit is rejected without reading.
    Otherwise the body is read and counted as it streams, which also covers
    chunked bodies and clients whose Content-Length is wrong. The application
    is called only once the whole body is in memory and within the limit, so it
    never parses part of an oversized body.
    """

    def __init__(self, app, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1; got {max_body_bytes}.")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_body_bytes:
            await self._reject(send)
            return

        chunks: list[bytes] = []
        size = 0
        disconnect = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnect = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        await self.app(scope, _replay(b"".join(chunks), disconnect, receive), send)

    async def _reject(self, send) -> None:
        detail = f"Request body is larger than the limit of {self.max_body_bytes:,} bytes; send less data per request."
        body = json.dumps({"detail": detail}).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    # The rest of the body stays unread, so the connection
                    # cannot carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, disconnect: dict | None, receive):
    """Return a receive callable that hands the buffered body to the application once."""
    delivered = False

    async def replayed_receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            if disconnect is not None:
                return disconnect
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed_receive
