"""Spoolman's WebSocket events: `{"type": "added"|"updated"|"deleted", "resource": "spool"|"filament"|"vendor",
"date": ..., "payload": {...}}`, sent to every Spoolman WebSocket open in this process (fablab/asgi.py).

A vendor, filament or spool saved or deleted (the admin, fablab's API, the Spoolman API) and a spool's
grams changed through the ledger (inventory.signals.stock_changed with its spool) are announced once
their transaction commits. Listeners live in the web process that holds the WebSocket: with several web
processes, each announces the changes made through itself.
"""

import asyncio
import logging
import threading

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from inventory.models import Filament, Spool, Vendor
from inventory.signals import stock_changed

logger = logging.getLogger(__name__)

RESOURCES = {Spool: "spool", Filament: "filament", Vendor: "vendor"}
_listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
_lock = threading.Lock()


def subscribe() -> asyncio.Queue:
    """A queue that receives every event from now on (call from the WebSocket's event loop)."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    with _lock:
        _listeners.add((asyncio.get_running_loop(), queue))
    return queue


def unsubscribe(queue: asyncio.Queue) -> None:
    with _lock:
        for listener in [listener for listener in _listeners if listener[1] is queue]:
            _listeners.discard(listener)


def _put(queue: asyncio.Queue, event: dict) -> None:
    if not queue.full():  # a listener that stopped reading loses events rather than the server its memory
        queue.put_nowait(event)


def publish(event: dict) -> None:
    with _lock:
        listeners = list(_listeners)
    for loop, queue in listeners:
        try:
            loop.call_soon_threadsafe(_put, queue, event)
        except RuntimeError:  # that loop has closed
            unsubscribe(queue)


def _payload(instance) -> dict:
    from inventory import selectors, spoolman

    if isinstance(instance, Spool):  # its Spoolman shape needs the list's annotations (last use, ...)
        instance = selectors.spool_list(archived=None).filter(pk=instance.pk).first() or instance
    context = spoolman._Context()
    shape = {Spool: spoolman._spool, Filament: spoolman._filament, Vendor: spoolman._vendor}[type(instance)]
    return shape(instance, context)


def _announce(kind: str, instance) -> None:
    if not _listeners:
        return
    try:
        payload = _payload(instance)
    except Exception:  # noqa: BLE001 - an event is a courtesy; the change itself has been made
        logger.exception("No Spoolman event for %s %s.", type(instance).__name__, instance.pk)
        return
    publish({"type": kind, "resource": RESOURCES[type(instance)], "date": timezone.now().isoformat(),
             "payload": payload})


def _on_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    pk = instance.pk
    kind = "added" if created else "updated"

    def after_commit():
        fresh = sender.objects.filter(pk=pk).first()
        if fresh is not None:
            _announce(kind, fresh)
    transaction.on_commit(after_commit)


def _on_delete(sender, instance, **kwargs) -> None:
    if not _listeners:
        return
    try:
        payload = _payload(instance)
    except Exception:  # noqa: BLE001
        logger.exception("No Spoolman event for deleted %s %s.", sender.__name__, instance.pk)
        return
    event = {"type": "deleted", "resource": RESOURCES[sender], "payload": payload}
    transaction.on_commit(lambda: publish({**event, "date": timezone.now().isoformat()}))


def _on_stock_changed(sender, spool_id: int | None = None, **kwargs) -> None:
    if sender is Spool and spool_id is not None:  # sent after commit already
        spool = Spool.objects.filter(pk=spool_id).first()
        if spool is not None:
            _announce("updated", spool)


def connect() -> None:
    for model in RESOURCES:
        post_save.connect(_on_save, sender=model, dispatch_uid=f"spoolman_events.save.{model.__name__}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"spoolman_events.delete.{model.__name__}")
    stock_changed.connect(_on_stock_changed, dispatch_uid="spoolman_events.stock_changed")
