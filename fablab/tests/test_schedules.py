import pytest
from django.core.management import call_command
from django_q.models import Schedule

from fablab.schedules import SCHEDULES, ScheduleSpec, sync_schedules

pytestmark = pytest.mark.django_db


def spec(name="fablab:test", func="fablab.tasks.prune_task_results", **kwargs):
    return ScheduleSpec(name=name, func=func, schedule_type=kwargs.pop("schedule_type", Schedule.HOURLY), **kwargs)


def test_declared_schedules_sync_idempotently(capsys):
    call_command("sync_schedules")
    assert set(Schedule.objects.values_list("name", flat=True)) == {s.name for s in SCHEDULES}
    call_command("sync_schedules")
    assert f"0 created, 0 updated, 0 deleted, {len(SCHEDULES)} unchanged" in capsys.readouterr().out


def test_changes_and_removals_are_reconciled_and_foreign_schedules_kept():
    Schedule.objects.create(name="made by staff", func="fablab.tasks.prune_task_results",
                            schedule_type=Schedule.DAILY)
    sync_schedules([spec(), spec(name="fablab:gone")])
    report = sync_schedules([spec(schedule_type=Schedule.MINUTES, minutes=5)])
    assert report == {"created": [], "updated": ["fablab:test"], "deleted": ["fablab:gone"], "unchanged": []}
    schedule = Schedule.objects.get(name="fablab:test")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 5)
    assert Schedule.objects.filter(name="made by staff").exists()


def test_dry_run_changes_nothing():
    report = sync_schedules([spec()], dry_run=True)
    assert report["created"] == ["fablab:test"]
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("specs", [[spec(), spec()], [spec(name="no-prefix")]])
def test_bad_declarations_are_refused(specs):
    with pytest.raises(ValueError):
        sync_schedules(specs)
    assert not Schedule.objects.exists()


def test_every_declared_function_exists():
    from django.utils.module_loading import import_string

    for declared in SCHEDULES:
        assert callable(import_string(declared.func))
