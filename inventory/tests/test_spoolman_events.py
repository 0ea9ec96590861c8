"""The Spoolman WebSocket (fablab/asgi.py, inventory/spoolman_events.py): events, health, Origin."""

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator

from inventory import services
from inventory.tests.factories import FilamentFactory, key, spool


async def _connect(lab_key: str, headers=()):
    from fablab.asgi import application

    scope = {"type": "websocket", "path": f"/spoolman/{lab_key}/api/v1/spool", "headers": list(headers),
             "query_string": b"", "subprotocols": []}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    return communicator, await communicator.receive_output(timeout=5)


async def _event(communicator) -> dict:
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.send"
    return json.loads(message["text"])


@pytest.mark.django_db(transaction=True)
def test_changes_are_announced_as_spoolman_events_and_text_gets_the_health(lab_key):
    filament = FilamentFactory(diameter_mm=Decimal("1.75"), density_g_cm3=Decimal("1.24"))
    held = spool(filament, grams="1000")

    async def scenario():
        communicator, answer = await _connect(lab_key)
        assert answer == {"type": "websocket.accept"}

        await communicator.send_input({"type": "websocket.receive", "text": "ping"})
        assert await _event(communicator) == {"status": "healthy"}

        await sync_to_async(services.spool_use)(spool=held, grams_used="12.5", idempotency_key=key("use"))
        event = await _event(communicator)
        assert (event["type"], event["resource"]) == ("updated", "spool")
        assert event["payload"]["id"] == held.pk and event["date"]
        assert event["payload"]["remaining_weight"] == pytest.approx(987.5)

        vendor = await sync_to_async(services.vendor_create)(name="Fresh Brand")
        event = await _event(communicator)
        assert (event["type"], event["resource"], event["payload"]["name"]) == ("added", "vendor", "Fresh Brand")

        vendor_id = vendor.pk
        await sync_to_async(services.vendor_delete)(vendor=vendor)
        event = await _event(communicator)
        assert (event["type"], event["resource"], event["payload"]["id"]) == ("deleted", "vendor", vendor_id)

        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=5)

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_foreign_origin_is_refused_and_the_sites_own_is_not(lab_key, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://mainsail.example.com"]

    async def scenario():
        _c, answer = await _connect(lab_key, headers=[(b"origin", b"https://evil.example"), (b"host", b"fablab.test")])
        assert answer == {"type": "websocket.close", "code": 4403}
        for origin in (b"https://fablab.test", b"https://mainsail.example.com"):
            communicator, answer = await _connect(lab_key, headers=[(b"origin", origin), (b"host", b"fablab.test")])
            assert answer == {"type": "websocket.accept"}
            await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
            await communicator.wait(timeout=5)

    asyncio.run(scenario())
