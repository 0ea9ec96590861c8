"""Browser test of the admin's plan timeline: staff open it from the print queue, see a row per printer with
the planned jobs as bars (the late one red), open a job from its bar, and nothing breaks the CSP."""

import re
from datetime import timedelta

import pytest

from tests.test_browser import CSP_WATCH, admin_log_in, boss, browser, page, screenshot  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_staff_open_the_plan_timeline_from_the_queue_and_a_job_from_its_bar(live_server, page, boss):  # noqa: F811
    from django.utils import timezone
    from playwright.sync_api import expect

    from printers.tests.factories import PrinterFactory
    from production.tests.factories import PrintJobFactory

    now = timezone.now()
    first, second = PrinterFactory(name="Farm X1C"), PrinterFactory(name="Farm MK4S")
    on_time = PrintJobFactory(planned_printer=first, planned_start=now + timedelta(minutes=10),
                              planned_finish=now + timedelta(hours=2), due_at=now + timedelta(hours=6))
    late = PrintJobFactory(planned_printer=second, planned_start=now + timedelta(hours=1),
                           planned_finish=now + timedelta(hours=5), due_at=now + timedelta(hours=3))
    page.context.add_init_script(CSP_WATCH)

    page.goto(live_server.url + "/admin/production/printjob/")
    admin_log_in(page)
    page.wait_for_url(re.compile(r"/admin/production/printjob/$"))
    page.locator("a[href$='open-timeline/']").first.click()
    page.wait_for_url(re.compile(r"/admin/production/printjob/timeline/$"))
    expect(page.locator("#plan-timeline")).to_contain_text("Farm X1C")
    expect(page.locator("#plan-timeline")).to_contain_text("Farm MK4S")
    late_bar = page.locator(f"a.gantt-bar[data-job='{late.pk}']")
    expect(late_bar).to_be_visible()
    assert late_bar.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(220, 38, 38)"
    on_time_bar = page.locator(f"a.gantt-bar[data-job='{on_time.pk}']")
    assert on_time_bar.evaluate("el => getComputedStyle(el).backgroundColor") != "rgb(220, 38, 38)"
    # The late bar lies to the right of the on-time one's start, on its own row.
    assert late_bar.bounding_box()["x"] > on_time_bar.bounding_box()["x"]
    assert "Late" in late_bar.get_attribute("title")
    assert page.evaluate("window.__cspViolations") == []
    screenshot(page, "admin-plan-timeline")
    late_bar.click()
    page.wait_for_url(re.compile(rf"/admin/production/printjob/{late.pk}/change/$"))
