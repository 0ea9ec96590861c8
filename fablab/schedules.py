"""django-q2 schedules declared in code and reconciled by name.

`python manage.py sync_schedules` makes the database match SCHEDULES: it creates
what is missing, updates what changed and deletes schedules that carry the
`fablab:` prefix but are no longer declared. Schedules staff create in the admin
under other names are left alone. Running it twice changes nothing the second time.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

PREFIX = "fablab:"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    schedule_type: str
    minutes: int | None = None
    cron: str | None = None
    kwargs: dict = field(default_factory=dict)
    cluster: str | None = None

    def fields(self) -> dict:
        return {
            "func": self.func,
            "schedule_type": self.schedule_type,
            "minutes": self.minutes,
            "cron": self.cron,
            "kwargs": repr(self.kwargs) if self.kwargs else "",
            "cluster": self.cluster,
        }


def _daily(name: str, func: str) -> ScheduleSpec:
    return ScheduleSpec(name=f"{PREFIX}{name}", func=func, schedule_type=Schedule.DAILY)


def _every(minutes: int, name: str, func: str) -> ScheduleSpec:
    return ScheduleSpec(name=f"{PREFIX}{name}", func=func, schedule_type=Schedule.MINUTES, minutes=minutes)


SCHEDULES: list[ScheduleSpec] = [
    _every(1, "dispatch-print-queue", "production.tasks.dispatch_queue"),
    _daily("purge-expired-scans", "reconstruction.tasks.purge_expired_scans"),
    _every(10, "fail-stalled-scans", "reconstruction.tasks.fail_stalled_scans"),
    _daily("purge-expired-invitations", "fablab.tasks.purge_expired_invitations"),
    _daily("prune-task-results", "fablab.tasks.prune_task_results"),
    _every(60, "expire-organization-exports", "fablab.tasks.expire_organization_exports"),
    # Polls more often than once a minute are made inside the task.
    _every(max(1, settings.PRUSALINK_POLL_SECONDS // 60), "poll-prusalink-printers",
           "printers.tasks.poll_prusalink_printers"),
    _every(1, "expire-printer-commands", "printers.tasks.expire_printer_commands"),
    _daily("purge-printer-telemetry", "printers.tasks.purge_telemetry"),
    _every(1, "report-overage", "billing.tasks.report_overage"),
    _daily("reconcile-overage", "billing.tasks.reconcile_overage"),
    _every(15, "expire-billing-graces", "billing.tasks.expire_graces"),
]


def _normalise(value):
    return None if value in ("", None) else value


@transaction.atomic
def sync_schedules(specs: list[ScheduleSpec] | None = None, *, dry_run: bool = False) -> dict[str, list[str]]:
    specs = SCHEDULES if specs is None else specs
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError("Two declared schedules share a name.")
    if any(not name.startswith(PREFIX) for name in names):
        raise ValueError(f"Declared schedule names must start with {PREFIX!r}.")

    report = {"created": [], "updated": [], "deleted": [], "unchanged": []}
    existing = {s.name: s for s in Schedule.objects.select_for_update().filter(name__startswith=PREFIX)}
    for spec in specs:
        wanted = spec.fields()
        schedule = existing.pop(spec.name, None)
        if schedule is None:
            report["created"].append(spec.name)
            if not dry_run:
                Schedule.objects.create(name=spec.name, next_run=timezone.now(), **wanted)
            continue
        changed = {k: v for k, v in wanted.items() if _normalise(getattr(schedule, k)) != _normalise(v)}
        if not changed:
            report["unchanged"].append(spec.name)
            continue
        report["updated"].append(spec.name)
        if not dry_run:
            for key, value in changed.items():
                setattr(schedule, key, value)
            schedule.save()
    for name, schedule in existing.items():
        report["deleted"].append(name)
        if not dry_run:
            schedule.delete()
    return report
