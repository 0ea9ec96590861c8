"""Readiness checks of the services fablab depends on: database, task broker, storage."""

import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django_q.brokers import get_broker


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        details = check() or {}
        ok = True
        error = None
    except Exception as exc:  # a health check reports failures, it never raises
        details, ok, error = {}, False, f"{type(exc).__name__}: {exc}"
    result = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1), **details}
    if error:
        result["error"] = error
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def check_broker() -> dict:
    default = get_broker()
    long = get_broker(settings.LONG_CLUSTER)
    if not default.ping():
        raise ConnectionError("the task broker did not answer")
    return {
        "kind": "redis" if settings.REDIS_URL else "orm",
        "queued": default.queue_size() or 0,
        "queued_long": long.queue_size() or 0,
    }


def check_storage() -> dict:
    name = default_storage.save(f"health/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as handle:
            if handle.read() != b"ok":
                raise OSError("storage returned different bytes than were written")
    finally:
        default_storage.delete(name)
    return {"backend": settings.STORAGES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def health_report() -> dict:
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "storage": _timed(check_storage),
    }
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded", "checks": checks}
