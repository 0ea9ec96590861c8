"""The lab-only key rule, the same at every door: REST endpoints and the Spoolman WebSocket."""

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest

from fablab.api_auth import lab_read_key, lab_write_key, require_lab_key
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.exceptions import PermissionDenied
from fablab.tests.factories import OrganizationFactory, PartnerFactory, make_api_key

pytestmark = pytest.mark.django_db

LAB_ONLY = "Only the lab's own API keys (an organization of kind 'lab') may do this."


def key_of(kind: str, scope: str = ApiKeyScope.WRITE):
    return make_api_key(OrganizationFactory(kind=kind), scope=scope)


def test_require_lab_key_passes_the_labs_keys_and_refuses_all_others():
    api_key, _raw = key_of(OrganizationKind.LAB, ApiKeyScope.READ)
    assert require_lab_key(api_key) is api_key
    for kind in (OrganizationKind.PARTNER, OrganizationKind.CUSTOMER):
        with pytest.raises(PermissionDenied) as refused:
            require_lab_key(key_of(kind)[0])
        assert refused.value.message == LAB_ONLY


def test_lab_read_and_write_keys_check_the_scope_and_the_organization():
    request = HttpRequest()
    _key, lab_read = key_of(OrganizationKind.LAB, ApiKeyScope.READ)
    _key, lab_write = key_of(OrganizationKind.LAB, ApiKeyScope.WRITE)
    _key, partner_write = key_of(OrganizationKind.PARTNER, ApiKeyScope.WRITE)

    assert lab_read_key.authenticate(request, lab_read).scope == ApiKeyScope.READ
    assert lab_write_key.authenticate(request, lab_write).scope == ApiKeyScope.WRITE
    assert lab_read_key.authenticate(request, lab_write) is not None  # a write key may read
    assert lab_read_key.authenticate(request, None) is None  # no key: ninja answers 401
    with pytest.raises(PermissionDenied, match="may only read"):
        lab_write_key.authenticate(request, lab_read)
    for auth in (lab_read_key, lab_write_key):
        with pytest.raises(PermissionDenied, match="lab's own API keys"):
            auth.authenticate(request, partner_write)


def test_printer_files_refuse_a_partners_key_with_the_shared_message(api):
    body = api.get("/api/v1/printers/1/files").json()
    assert body["status"] == 403 and body["detail"] == LAB_ONLY


async def _websocket_answer(headers) -> dict:
    from fablab.asgi import application

    scope = {"type": "websocket", "path": "/spoolman/api/v1/spool", "headers": headers, "query_string": b"",
             "subprotocols": []}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    answer = await communicator.receive_output(timeout=5)
    if answer["type"] == "websocket.accept":
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=5)
    return answer


@pytest.mark.django_db(transaction=True)
def test_spoolman_websocket_takes_the_labs_keys_only():
    _key, lab = key_of(OrganizationKind.LAB, ApiKeyScope.READ)
    _key, partner = make_api_key(PartnerFactory(), scope=ApiKeyScope.WRITE)

    def answer(raw: str) -> dict:
        return asyncio.run(_websocket_answer([(b"x-api-key", raw.encode())]))

    assert answer(lab) == {"type": "websocket.accept"}
    assert answer(partner) == {"type": "websocket.close", "code": 4403}
    assert answer("fl_ABCDEFGH_" + "x" * 40) == {"type": "websocket.close", "code": 4401}
    assert answer("") == {"type": "websocket.close", "code": 4401}
