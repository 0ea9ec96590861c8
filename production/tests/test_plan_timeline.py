"""The plan as a timeline: selectors.print_plan_timeline places each waiting job's planned start and finish on
a window of whole ticks, a row per printer, and flags the jobs planned to finish after their due date; the
admin's "Plan timeline" page draws it for staff who may view print jobs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from fablab.tests.factories import UserFactory
from printers.tests.factories import PrinterFactory
from production import selectors
from production.choices import PrintJobStatus
from production.models import PrintJob, QueueReplan
from production.tests.factories import PrintJobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TIMELINE = "admin:production_printjob_timeline"


def _planned(printer, start_h: float, finish_h: float, due_h: float | None = None, **fields) -> PrintJob:
    return PrintJobFactory(
        planned_printer=printer, planned_start=NOW + timedelta(hours=start_h),
        planned_finish=NOW + timedelta(hours=finish_h),
        due_at=NOW + timedelta(hours=due_h) if due_h is not None else None, **fields)


@pytest.fixture
def plan(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    alpha = PrinterFactory(name="Alpha X1")
    beta = PrinterFactory(name="beta MK4")
    PrinterFactory(name="Retired", is_active=False)
    on_time = _planned(alpha, 0, 2, due_h=3)
    late = _planned(alpha, 2, 5, due_h=4)
    no_due = _planned(beta, 1, 3)
    _planned(beta, 0, 1, status=PrintJobStatus.COMPLETED)  # ended: its old plan is not drawn
    PrintJobFactory()  # waiting, without a plan
    QueueReplan.objects.create(pk=1, planned_at=NOW - timedelta(minutes=5), solver="cp-sat")
    return alpha, beta, on_time, late, no_due


def test_the_timeline_places_each_planned_job_on_its_printer_and_flags_the_late_one(plan):
    alpha, beta, on_time, late, no_due = plan
    timeline = selectors.print_plan_timeline(now=NOW)
    # 10:00 to 15:00 UTC: five hours, ticks every hour on the hour.
    assert (timeline["start"], timeline["end"]) == (NOW, NOW + timedelta(hours=5))
    assert [tick["left"] for tick in timeline["ticks"]] == [0, 20, 40, 60, 80, 100]
    assert timeline["now_left"] == 0
    assert [row["printer"] for row in timeline["rows"]] == [alpha, beta]  # active printers by name
    bars = {bar["job"].pk: bar for row in timeline["rows"] for bar in row["bars"]}
    assert set(bars) == {on_time.pk, late.pk, no_due.pk}
    assert [bar["job"] for bar in timeline["rows"][0]["bars"]] == [on_time, late]
    assert (bars[on_time.pk]["left"], bars[on_time.pk]["width"], bars[on_time.pk]["late"]) == (0, 40, False)
    assert (bars[late.pk]["left"], bars[late.pk]["width"], bars[late.pk]["late"]) == (40, 60, True)
    assert bars[on_time.pk]["due_left"] == 60 and bars[late.pk]["due_left"] == 80
    assert (bars[no_due.pk]["left"], bars[no_due.pk]["late"], bars[no_due.pk]["due_left"]) == (20, False, None)
    assert (timeline["jobs"], timeline["late"], timeline["unplanned"]) == (3, 1, 1)
    assert (timeline["planned_at"], timeline["solver"]) == (NOW - timedelta(minutes=5), "cp-sat")


@pytest.mark.parametrize(("start_h", "finish_h", "step", "first_tick"), [
    # 08:30 to 22:00 UTC two days later: every 6 hours from 06:00 in Berlin (05:00 UTC), before the first start
    (-1.5, 60, timedelta(hours=6), datetime(2026, 3, 2, 5, 0, tzinfo=UTC)),
    # more than a week: every day from midnight in Berlin (23:00 UTC the day before)
    (0, 200, timedelta(days=1), datetime(2026, 3, 1, 23, 0, tzinfo=UTC)),
    # far beyond the longest step: whole days still, no more ticks than allowed
    (0, 24 * 400, None, datetime(2026, 3, 1, 23, 0, tzinfo=UTC)),
])
def test_the_window_covers_the_plan_in_round_local_ticks(settings, start_h, finish_h, step, first_tick):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in early March
    printer = PrinterFactory(name="Long")
    _planned(printer, start_h, finish_h)
    timeline = selectors.print_plan_timeline(now=NOW)
    ticks = [tick["at"] for tick in timeline["ticks"]]
    gaps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(gaps) == 1 and (step is None or gaps == {step})
    assert ticks[0] == first_tick == timeline["start"] and timeline["end"] == ticks[-1]
    assert timeline["end"] >= NOW + timedelta(hours=finish_h) and len(ticks) <= selectors.TIMELINE_MAX_TICKS
    assert 0 < timeline["now_left"] < 100
    bar = timeline["rows"][0]["bars"][0]
    assert bar["left"] > 0 and bar["left"] + bar["width"] <= 100


def test_without_a_plan_every_active_printer_has_an_empty_row():
    PrinterFactory(name="Idle")
    PrintJobFactory()
    timeline = selectors.print_plan_timeline(now=NOW)
    assert [(row["printer"].name, row["bars"]) for row in timeline["rows"]] == [("Idle", [])]
    assert (timeline["jobs"], timeline["unplanned"], timeline["planned_at"]) == (0, 1, None)
    assert timeline["end"] - timeline["start"] >= timedelta(hours=1)


# --- the admin page --------------------------------------------------------------------------------


def _staff_with(*perms):
    user = UserFactory(is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def test_staff_see_the_printers_and_the_late_job_in_red_with_links_to_the_jobs(plan, client):
    alpha, beta, on_time, late, no_due = plan
    client.force_login(_staff_with("production.view_printjob"))
    response = client.get(reverse(TIMELINE))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Alpha X1" in body and "beta MK4" in body and "Retired" not in body
    change = reverse("admin:production_printjob_change", args=[late.pk])
    assert f'class="gantt-bar gantt-late" data-job="{late.pk}" data-late="1"' in body
    assert f'class="gantt-bar" data-job="{on_time.pk}" data-late="0"' in body
    assert f'href="{change}"' in body
    assert f'data-due-job="{late.pk}"' in body
    nonce = response.context["CSP_NONCE"]
    assert f'<style nonce="{nonce}">' in body and f"nonce-{nonce}" in response["Content-Security-Policy"]
    timeline = response.context["timeline"]
    bar = next(b for row in timeline["rows"] for b in row["bars"] if b["job"] == late)
    assert f'style="left:{bar["left"]}%;width:{bar["width"]}%"' in body
    assert reverse(TIMELINE) in body  # the sidebar links to the page
    # Times in the active time zone: 12:00 UTC is 1 p.m. in Berlin.
    start = date_format(timezone.localtime(late.planned_start), "SHORT_DATETIME_FORMAT")
    assert "1 p.m." in start and f"Start: {start}" in body and "Europe/Berlin" in body


def test_positions_stay_css_numbers_in_a_language_with_decimal_commas(plan, client, settings):
    alpha, *_rest = plan
    PrintJobFactory(planned_printer=alpha, planned_start=NOW + timedelta(minutes=20),
                    planned_finish=NOW + timedelta(minutes=50))
    client.force_login(_staff_with("production.view_printjob"))
    body = client.get(reverse(TIMELINE), headers={"accept-language": "de"}).content.decode()
    assert "left:" in body and not any(f"left:{n}," in body for n in range(100))


def test_the_queue_links_to_the_timeline(plan, admin_client):
    body = admin_client.get(reverse("admin:production_printjob_changelist")).content.decode()
    assert "open-timeline" in body
    link = reverse("admin:production_printjob_changelist") + "open-timeline/"
    response = admin_client.get(link)
    assert response.status_code == 302 and response["Location"] == reverse(TIMELINE)


def test_who_may_not_see_the_timeline(plan, client):
    url = reverse(TIMELINE)
    client.force_login(UserFactory(is_staff=False))
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    client.force_login(_staff_with("printers.view_printer"))  # staff, but may not view print jobs
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302
