"""The printer's admin page: telemetry charts, job and state history, confirmed command buttons."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from fablab.tests.factories import UserFactory
from printers import services, tasks
from printers.admin.charts import Series, line_chart, nice_ticks
from printers.choices import CommandStatus, PrinterState
from printers.models import PrinterCommand, TelemetrySample
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

pytestmark = pytest.mark.django_db


def set_state(printer, state, **extra):
    services.printer_apply_state(printer=printer, state=NormalisedState(state=state, **extra))
    return printer


@pytest.fixture
def bambu():
    printer = BambuPrinterFactory(name="P1S <lab>")
    return set_state(printer, PrinterState.PRINTING, raw_state="RUNNING", job_key="9", progress_percent=40.0,
                     nozzle_temp_c=219.0, nozzle_target_c=220.0, bed_temp_c=59.0, bed_target_c=60.0,
                     current_file="benchy.3mf")


def listener_answers():
    """Stands in for run_printers: every pending command is sent and succeeds."""
    for command in PrinterCommand.objects.filter(status=CommandStatus.PENDING):
        services.command_mark_sent(command=command, sequence_id=str(command.pk))
        services.command_finish(command=command, ok=True)


def change_url(printer):
    return reverse("admin:printers_printer_change", args=[printer.pk])


def command_url(printer, command):
    return reverse("admin:printers_printer_command", args=[printer.pk, command])


def messages_of(response):
    return " ".join(str(m) for m in response.context["messages"])


# --- charts -------------------------------------------------------------------------------


def test_charts_follow_the_chosen_window(admin_client, bambu):
    now = timezone.now()
    TelemetrySample.objects.filter(printer=bambu).delete()
    for minutes, nozzle, progress in [(5, 218.0, 38.0), (30, 200.0, 20.0), (50, 150.0, 5.0), (180, 25.0, None),
                                      (600, 24.0, None), (2000, 23.0, None)]:
        TelemetrySample.objects.create(printer=bambu, at=now - timedelta(minutes=minutes), nozzle_c=nozzle,
                                       bed_c=nozzle / 4, progress_percent=progress)
    page = admin_client.get(change_url(bambu) + "?window=1h").content.decode()
    assert "3 samples" in page
    temperature = page.split('id="temperature-chart"')[1].split("</figure>")[0]
    assert temperature.count("<path") == 4  # nozzle, bed and both targets (the current ones, dashed)
    assert "Nozzle target now" in temperature and 'stroke-dasharray="6 4"' in temperature
    progress = page.split('id="progress-chart"')[1].split("</figure>")[0]
    assert progress.count("<path") == 1 and "100 %" in progress
    assert "5 samples" in admin_client.get(change_url(bambu) + "?window=24h").content.decode()
    assert "4 samples" in admin_client.get(change_url(bambu)).content.decode()  # the default: 6 h
    assert "4 samples" in admin_client.get(change_url(bambu) + "?window=forever").content.decode()
    assert "<script" not in page.split('id="printer-panel"')[1].split("</section>")[0]


def test_page_without_telemetry_and_history_tabs(admin_client):
    printer = PrinterFactory(name="Core One")
    page = admin_client.get(change_url(printer)).content.decode()
    assert "No temperatures in this window." in page and "No job progress in this window." in page
    set_state(printer, PrinterState.PRINTING, job_key="1", current_file="cube.bgcode", progress_percent=1.0)
    set_state(printer, PrinterState.FINISHED, job_key="1", current_file="cube.bgcode", progress_percent=100.0)
    page = admin_client.get(change_url(printer)).content.decode()
    assert "cube.bgcode" in page  # the job inline
    assert "Completed" in page and "Finished" in page  # job outcome, transition
    # The page still saves with its read-only, paginated history.
    response = admin_client.post(change_url(printer), {
        "name": "Core One", "driver": "prusalink", "model": "Core One", "serial": "", "host": "127.0.0.1",
        "port": "", "auth_method": "digest", "secret": "", "nozzle_diameter_mm": "0.40", "bed_x_mm": 250,
        "bed_y_mm": 220, "bed_z_mm": 270, "location": "Room 2", "is_active": "on",
        "transitions-TOTAL_FORMS": 2, "transitions-INITIAL_FORMS": 2,
        **{f"transitions-{n}-id": t.pk for n, t in enumerate(printer.transitions.order_by("-at", "-id"))},
        "jobs-TOTAL_FORMS": 1, "jobs-INITIAL_FORMS": 1, "jobs-0-id": printer.jobs.get().pk,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    printer.refresh_from_db()
    assert printer.location == "Room 2" and printer.bed_y_mm == 220


def test_chart_breaks_lines_at_gaps_and_escapes_labels():
    now = timezone.now()
    times = [now - timedelta(minutes=m) for m in (50, 40, 30, 20, 10)]
    svg = str(line_chart(times=times, series=[Series("<b>x</b>", [10, 20, None, 30, 40], "#000")],
                         start=now - timedelta(hours=1), end=now, unit="°C", title="T & C"))
    path = re.search(r'<path d="([^"]+)"', svg).group(1)
    assert path.count("M") == 2 and path.count("L") == 2
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "T &amp; C" in svg
    assert nice_ticks(0, 230) == [0, 50, 100, 150, 200, 250]
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(20.5, 221.3) == [0, 50, 100, 150, 200, 250]


# --- command buttons ------------------------------------------------------------------------


def detail_buttons(page, printer):
    return {name for name in ("pause", "resume", "stop", "light-on", "light-off")
            if f"/admin/printers/printer/{printer.pk}/{name}/" in page}


def test_buttons_follow_the_state(admin_client, bambu):
    assert detail_buttons(admin_client.get(change_url(bambu)).content.decode(), bambu) == {
        "pause", "stop", "light-on", "light-off"}
    set_state(bambu, PrinterState.PAUSED, raw_state="PAUSE", job_key="9")
    assert detail_buttons(admin_client.get(change_url(bambu)).content.decode(), bambu) == {
        "resume", "stop", "light-on", "light-off"}
    set_state(bambu, PrinterState.OFFLINE)
    assert detail_buttons(admin_client.get(change_url(bambu)).content.decode(), bambu) == set()
    prusa = set_state(PrinterFactory(), PrinterState.PRINTING, job_key="3")
    assert detail_buttons(admin_client.get(change_url(prusa)).content.decode(), prusa) == {"pause", "stop"}


def test_button_leads_to_a_confirmation_that_sends_nothing(admin_client, bambu):
    response = admin_client.get(reverse("admin:printers_printer_detail_pause", args=[bambu.pk]))
    assert response.status_code == 302 and response["Location"] == command_url(bambu, "pause")
    page = admin_client.get(command_url(bambu, "pause"))
    body = page.content.decode()
    assert page.status_code == 200 and "Pause the current job?" in body
    assert "csrfmiddlewaretoken" in body and 'method="post"' in body
    assert "P1S &lt;lab&gt;" in body and "benchy.3mf" in body
    assert not PrinterCommand.objects.exists()


def test_confirmed_post_sends_exactly_one_command(admin_client, bambu):
    response = admin_client.post(command_url(bambu, "stop"), {"confirm": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == change_url(bambu)
    assert "P1S <lab>: Stop sent, waiting for the printer" in messages_of(response)
    command = PrinterCommand.objects.get()
    assert command.action == "stop" and command.status == CommandStatus.PENDING and command.printer == bambu
    commands = response.content.decode().split('id="printer-commands"')[1].split("</section>")[0]
    assert 'data-status="pending"' in commands and "Waiting for the printer listener" in commands
    listener_answers()
    command.refresh_from_db()
    assert command.status == CommandStatus.SUCCEEDED
    page = admin_client.get(change_url(bambu)).content.decode()
    assert 'data-status="succeeded"' in page.split('id="printer-commands"')[1]

    admin_client.post(command_url(bambu, "light_off"), {"confirm": "yes"})
    assert PrinterCommand.objects.count() == 2
    assert PrinterCommand.objects.order_by("-id").first().params == {"mode": "off"}


def test_post_is_protected_by_csrf(bambu, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(command_url(bambu, "pause"), {"confirm": "yes"}).status_code == 403
    assert not PrinterCommand.objects.exists()


def test_command_not_allowed_in_this_state_is_refused_with_a_message(admin_client, bambu):
    for method in (admin_client.get, admin_client.post):
        response = method(command_url(bambu, "resume"), follow=True)
        assert response.redirect_chain[-1][0] == change_url(bambu)
        assert "P1S <lab> cannot resume while printing." in messages_of(response)
    prusa = set_state(PrinterFactory(name="MK4"), PrinterState.PRINTING, job_key="3")
    response = admin_client.post(command_url(prusa, "light_on"), follow=True)
    assert "Only Bambu printers have a light" in messages_of(response)
    assert admin_client.get(command_url(bambu, "explode")).status_code == 404
    assert not PrinterCommand.objects.exists()


def test_failure_of_the_printer_is_shown(admin_client, bambu, monkeypatch, settings):
    settings.BAMBU_COMMAND_TIMEOUT_SECONDS = 0.0
    monkeypatch.setattr(services, "PICKUP_MARGIN_SECONDS", 0.0)
    response = admin_client.post(command_url(bambu, "pause"), {"confirm": "yes"}, follow=True)
    assert "sent, waiting for the printer" in messages_of(response)  # at once, whether a listener runs or not
    tasks.expire_printer_commands()  # nobody took it: the schedule expires it
    assert PrinterCommand.objects.get().status == CommandStatus.EXPIRED
    commands = admin_client.get(change_url(bambu)).content.decode().split('id="printer-commands"')[1]
    assert 'data-status="expired"' in commands and "Not picked up" in commands
    assert "run_printers" in commands and "running" in commands


def test_who_may_send_commands(client, bambu, staff_member):
    url = command_url(bambu, "pause")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory(is_staff=False))
    assert client.post(url).status_code == 302 and not PrinterCommand.objects.exists()

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_printer"))
    client.force_login(viewer)
    page = client.get(change_url(bambu)).content.decode()
    assert page and detail_buttons(page, bambu) == set()
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    assert not PrinterCommand.objects.exists()

    client.force_login(staff_member("Operator"))
    assert detail_buttons(client.get(change_url(bambu)).content.decode(), bambu) >= {"pause", "stop"}
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert PrinterCommand.objects.count() == 1


# --- the command log ------------------------------------------------------------------------


def test_command_admin_lists_and_filters_read_only(admin_client, bambu):
    other = BambuPrinterFactory(name="X1C")
    done = PrinterCommand.objects.create(printer=bambu, action="pause", status=CommandStatus.SUCCEEDED)
    stale = PrinterCommand.objects.create(printer=bambu, action="stop")
    PrinterCommand.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    PrinterCommand.objects.create(printer=other, action="light", params={"mode": "on"},
                                  status=CommandStatus.FAILED, error="the printer refused")
    url = reverse("admin:printers_printercommand_changelist")
    page = admin_client.get(url).content.decode()
    assert "Light (on)" in page and "the printer refused" in page and "P1S &lt;lab&gt;" in page
    succeeded = admin_client.get(url + "?status__exact=succeeded")
    assert succeeded.status_code == 200 and list(succeeded.context["cl"].result_list) == [done]
    filtered = admin_client.get(url + f"?printer__id__exact={bambu.pk}")
    assert {c.printer_id for c in filtered.context["cl"].result_list} == {bambu.pk}
    filtered = filtered.content.decode()
    rows = filtered.split("<tbody")[1].split("</tbody>")[0]
    assert "P1S &lt;lab&gt;" in rows and "X1C" not in rows
    lights = admin_client.get(url + "?action__exact=light")
    assert [c.action for c in lights.context["cl"].result_list] == ["light"]
    stale.refresh_from_db()
    assert stale.status == CommandStatus.PENDING  # reading the log writes nothing ...
    tasks.expire_printer_commands()  # ... the schedule expires what nobody took
    stale.refresh_from_db()
    assert stale.status == CommandStatus.EXPIRED and done.status == CommandStatus.SUCCEEDED
    assert admin_client.get(reverse("admin:printers_printercommand_add")).status_code == 403
    detail = admin_client.get(reverse("admin:printers_printercommand_change", args=[done.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert admin_client.post(reverse("admin:printers_printercommand_change", args=[done.pk]),
                             {"error": "edited"}).status_code == 403
    done.refresh_from_db()
    assert done.error == ""
