"""Who may use the UI: this machine by default; elsewhere, only a browser that has been given the key.

A browser cannot add a header to the page loads, images and links of an app, so the key also travels as a cookie:
opening `/?key=KEY` once sets it (HttpOnly, SameSite=Strict, so other sites' pages cannot send it) and returns to
the app without the key in the address bar. Scripts and curl may send the X-API-Key header instead, as to `serve`.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, RedirectResponse

LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "lmtune_key"


class KeyCheck:
    def __init__(self, app, api_key: str):
        self.app, self.api_key = app, api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = parse_qs(scope.get("query_string", b"").decode()).get("key", [""])[0].encode()
        if scope["path"] == "/" and given:
            if not secrets.compare_digest(given, self.api_key):
                return await _refused(scope, receive, send)
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, given.decode(), httponly=True, samesite="strict")
            return await response(scope, receive, send)
        headers = dict(scope["headers"])
        cookies = dict(part.strip().split("=", 1) for part in headers.get(b"cookie", b"").decode().split(";")
                       if "=" in part)
        sent = headers.get(b"x-api-key") or cookies.get(COOKIE, "").encode()
        if not secrets.compare_digest(sent, self.api_key):
            return await _refused(scope, receive, send)
        await self.app(scope, receive, send)


async def _refused(scope, receive, send) -> None:
    detail = "this lmtune ui needs its key: open /?key=KEY once in the browser, or send the X-API-Key header"
    await JSONResponse({"detail": detail}, status_code=401)(scope, receive, send)
