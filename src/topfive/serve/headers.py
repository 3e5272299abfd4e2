"""The headers every response gets, and the Server-Timing header of a classification."""

from __future__ import annotations

# Everything from this server only, nothing inline: the page's script and style are files of the
# package; the photo is drawn on a canvas, so no image source beyond the report's files is needed.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI wrapper that adds HEADERS to each HTTP response (replacing any of the same name)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + HEADERS}
            await send(message)

        await self.app(scope, receive, with_headers)


def server_timing(decode_seconds: float, entries: list[tuple[str, float]]) -> str:
    """`decode;dur=8.1, m0;dur=12.3;desc="efficientnet_lite0", ...`: the photo's decoding and each
    model's latency (from its queue to its answer) in ms, the models in the order asked."""
    def quoted(text: str) -> str:
        return '"' + "".join(ch for ch in text if ch.isprintable() and ch not in '"\\') + '"'

    models = (f"m{i};dur={seconds * 1000:.1f};desc={quoted(name)}" for i, (name, seconds) in enumerate(entries))
    return ", ".join([f"decode;dur={decode_seconds * 1000:.1f}", *models])
