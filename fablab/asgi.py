"""ASGI entry point: Django for HTTP, plus the one WebSocket fablab serves.

Moonraker's Spoolman integration reports filament usage only while it holds a
WebSocket open to `<server>/api/v1/spool`; fablab accepts that connection (for
keys of the lab's own systems, from no browser page but its own), sends Spoolman's events on
it when spools, filaments and vendors change, and answers a text message with its health.
Serve fablab with an ASGI server (`uvicorn fablab.asgi:application`) where Moonraker reports usage.
"""

import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab.settings")
django_application = get_asgi_application()

from fablab.services import API_KEY_PATTERN  # noqa: E402  (models are ready only after get_asgi_application)

SPOOL_EVENTS = re.compile(rf"^/spoolman/(?:(?P<key>{API_KEY_PATTERN})/)?api/v1/spool/?$")


def _client_address(scope, headers: dict) -> str:
    """The client's address as fablab.security.client_ip reads it (X-Forwarded-For as far as trusted)."""
    from django.http import HttpRequest

    from fablab.security import client_ip

    request = HttpRequest()
    request.META["REMOTE_ADDR"] = (scope.get("client") or ("", 0))[0]
    if "x-forwarded-for" in headers:
        request.META["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    return client_ip(request)


def _lab_key(raw_key: str, address: str = ""):
    """The lab's own key presented on the WebSocket (the same rule as the Spoolman API's reads: a printer
    host's key too), or, without a key, a host that SPOOLMAN_ALLOW_HOSTS lists."""
    from fablab.api_auth import allowed_host, require_lab_key
    from fablab.services import api_key_authenticate

    if not raw_key:
        host = allowed_host(address)
        if host is not None:
            return host
    return require_lab_key(api_key_authenticate(raw_key=raw_key))


def _origin_allowed(headers: dict) -> bool:
    """No Origin (Moonraker, OctoPrint: not a browser), or a page of this site or of CSRF_TRUSTED_ORIGINS."""
    from urllib.parse import urlsplit

    from django.conf import settings

    origin = headers.get("origin")
    if origin is None:
        return True
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower() != ""


async def spool_events(scope, receive, send, key: str | None) -> None:
    """Accept, then send Spoolman's events (inventory/spoolman_events.py) and answer any text with its health."""
    import asyncio
    import json

    from asgiref.sync import sync_to_async

    from fablab.exceptions import PermissionDenied
    from fablab.services import AuthenticationFailed
    from inventory import spoolman_events

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    if not _origin_allowed(headers):
        await send({"type": "websocket.close", "code": 4403})
        return
    raw_key = key or headers.get("x-api-key", "")
    try:
        await sync_to_async(_lab_key)(raw_key, _client_address(scope, headers))
    except AuthenticationFailed:
        await send({"type": "websocket.close", "code": 4401})
        return
    except PermissionDenied:
        await send({"type": "websocket.close", "code": 4403})
        return
    events = spoolman_events.subscribe()
    await send({"type": "websocket.accept"})
    incoming = asyncio.ensure_future(receive())
    outgoing = asyncio.ensure_future(events.get())
    try:
        while True:
            done, _pending = await asyncio.wait({incoming, outgoing}, return_when=asyncio.FIRST_COMPLETED)
            if outgoing in done:
                await send({"type": "websocket.send", "text": json.dumps(outgoing.result())})
                outgoing = asyncio.ensure_future(events.get())
            if incoming in done:
                message = incoming.result()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:  # Spoolman answers any text with its health
                    await send({"type": "websocket.send", "text": json.dumps({"status": "healthy"})})
                incoming = asyncio.ensure_future(receive())
    finally:
        spoolman_events.unsubscribe(events)
        for task in (incoming, outgoing):
            task.cancel()


async def application(scope, receive, send):
    if scope["type"] == "websocket":
        match = SPOOL_EVENTS.match(scope.get("path", ""))
        if match is None:
            await receive()
            await send({"type": "websocket.close", "code": 4404})
            return
        await spool_events(scope, receive, send, match.group("key"))
        return
    await django_application(scope, receive, send)
