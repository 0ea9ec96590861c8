from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure, Success
from django_q.tasks import async_task

from fablab import tasks

pytestmark = pytest.mark.django_db


def test_long_jobs_go_to_their_own_queue():
    default, long = get_broker(), get_broker(settings.LONG_CLUSTER)
    async_task("fablab.tasks.prune_task_results")
    async_task("fablab.tasks.prune_task_results", cluster=settings.LONG_CLUSTER)
    async_task("fablab.tasks.prune_task_results", cluster=settings.LONG_CLUSTER)
    assert default.queue_size() == 1
    assert long.queue_size() == 2


def test_long_cluster_configuration():
    long = settings.Q_CLUSTER["ALT_CLUSTERS"][settings.LONG_CLUSTER]
    assert long["timeout"] > settings.Q_CLUSTER["timeout"]
    assert long["retry"] > long["timeout"]
    assert settings.Q_CLUSTER["retry"] > settings.Q_CLUSTER["timeout"]
    assert long["workers"] >= 1 and long["queue_limit"] == 1


def test_prune_task_results_keeps_recent_ones():
    now = timezone.now()
    common = {"func": "x", "started": now, "args": None, "kwargs": None, "result": None}
    Success.objects.create(id="a" * 32, name="old", stopped=now - timedelta(days=40), success=True, **common)
    Failure.objects.create(id="b" * 32, name="old-fail", stopped=now - timedelta(days=40), success=False, **common)
    Success.objects.create(id="c" * 32, name="new", stopped=now - timedelta(days=1), success=True, **common)
    assert tasks.prune_task_results() == 2
    assert list(Success.objects.values_list("name", flat=True)) == ["new"]
    assert tasks.prune_task_results() == 0
