"""ASGI entry point: Django for HTTP, plus the one WebSocket fablab serves.

Moonraker's Spoolman integration reports filament usage only while it holds a
WebSocket open to `<server>/api/v1/spool`; fablab accepts that connection (for
keys of the lab's own systems) and keeps it open. Serve fablab with an ASGI server
(`uvicorn fablab.asgi:application`) where Moonraker reports usage.
"""

import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab.settings")
django_application = get_asgi_application()

from fablab.services import API_KEY_PATTERN  # noqa: E402  (models are ready only after get_asgi_application)

SPOOL_EVENTS = re.compile(rf"^/spoolman/(?:(?P<key>{API_KEY_PATTERN})/)?api/v1/spool/?$")


def _lab_key(raw_key: str):
    """The lab's own key presented on the WebSocket (the same rule as the lab's REST endpoints)."""
    from fablab.api_auth import require_lab_key
    from fablab.services import api_key_authenticate

    return require_lab_key(api_key_authenticate(raw_key=raw_key))


async def spool_events(scope, receive, send, key: str | None) -> None:
    from asgiref.sync import sync_to_async

    from fablab.exceptions import PermissionDenied
    from fablab.services import AuthenticationFailed

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    raw_key = key or headers.get("x-api-key", "")
    try:
        await sync_to_async(_lab_key)(raw_key)
    except AuthenticationFailed:
        await send({"type": "websocket.close", "code": 4401})
        return
    except PermissionDenied:
        await send({"type": "websocket.close", "code": 4403})
        return
    await send({"type": "websocket.accept"})
    while True:  # nothing to push yet: spools are never deleted, only archived
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return


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
