"""Plain helpers every app's tests share: an API client, the problem+json check, the test corpus.

Fixtures live in the root conftest.py; what a test imports lives here.
"""

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

# --- The API -------------------------------------------------------------------------------


class ApiClient(Client):
    """A test client that sends an API key with every request."""

    def __init__(self, key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.key = key

    def generic(self, method, path, *args, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.key is not None:
            headers.setdefault("X-API-Key", self.key)
        return super().generic(method, path, *args, headers=headers, **kwargs)


def assert_problem(response, status: int, *, detail_contains: str = "") -> dict:
    """The response is an RFC 7807 problem with this status; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["instance"].startswith("/api/v1/")
    if detail_contains:
        assert detail_contains in body["detail"], body["detail"]
    return body


# --- The corpus of real printer payloads, sliced files and photos ----------------------------

# The name a parametrised test gets in place of the corpus's files when the corpus is missing.
CORPUS_MISSING = "corpus-missing"


def corpus_path(*parts: str) -> Path:
    """A file or folder of the test corpus (settings.FABLAB_CORPUS, from the FABLAB_CORPUS variable).

    Fails the test, saying how to point FABLAB_CORPUS at the corpus, when it is not there: tests that
    need the corpus never skip.
    """
    root = Path(settings.FABLAB_CORPUS)
    path = root.joinpath(*parts)
    if not root.is_dir():
        pytest.fail(f"The test corpus is missing: {root} is not a folder. Set FABLAB_CORPUS to the shared corpus "
                    "folder (default ../shared/corpus).", pytrace=False)
    if not path.exists():
        pytest.fail(f"The test corpus has no {'/'.join(parts)}: {path} is missing. Is FABLAB_CORPUS ({root}) "
                    "the shared corpus folder?", pytrace=False)
    return path


def corpus_json(*parts: str):
    """A JSON file of the test corpus, parsed."""
    path = corpus_path(*parts)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        pytest.fail(f"The test corpus file {path} is not valid JSON: {exc}", pytrace=False)


def slicer_expected() -> dict[str, dict]:
    """The ground truth of the slicer corpus (slicer/expected.json), by file name."""
    return corpus_json("slicer", "expected.json")["files"]


def corpus_cases(names: Callable[[], Iterable[str]]) -> list[str]:
    """Sorted names to parametrise a test with, read from the corpus while tests are collected.

    Where the corpus is missing this gives the one name CORPUS_MISSING instead of stopping the whole
    collection: the test then fails on its own, with corpus_path's message.
    """
    try:
        return sorted(names())
    except pytest.fail.Exception:
        return [CORPUS_MISSING]


def run_in_threads(count: int, work) -> tuple[list, list]:
    """Run `work(n)` for n in range(count) in as many threads, released together by a barrier, each with
    its own database connection; returns (results, errors). For concurrency tests on PostgreSQL."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker(n):
        try:
            barrier.wait()
            results.append(work(n))
        except Exception as exc:  # collected and asserted on by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors
