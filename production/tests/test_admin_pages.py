"""Production's admin pages beyond the queue list: "send to printer…", the printer stations, the panel on the
fleet cards and the printer's page with "Plate cleared", and a job's page (attempts, slots, ledger, cost)."""

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from fablab.exceptions import Conflict
from fablab.tests.factories import UserFactory
from inventory import services as inventory_services
from inventory.choices import MovementKind, SourceType
from printers.choices import PrinterState
from production import services
from production.choices import AttemptOutcome, PrintJobStatus
from production.models import PrintAttempt, PrinterStation, PrintJob, SlotAllocation
from production.tests.factories import BambuPrinterFactory, FilamentFactory, bambu_file, job, live, spool, version

pytestmark = pytest.mark.django_db

FLEET_JSON = "admin:printers_fleet_json"


def _tray(slot, colour="#00AE42"):
    return {"ams": 0, "tray": slot, "slot": slot, "type": "PLA", "name": "", "colour": colour,
            "remaining_percent": 80, "loaded": False}


def _printer(name, trays, state=PrinterState.IDLE):
    printer = BambuPrinterFactory(name=name, model="P1S")
    return live(printer, state=state, online=True, filament_slots=trays, nozzle_type="hardened_steel",
                nozzle_diameter_mm=0.4)


def _queued(**kwargs):
    """A queued Bambu job (PLA #00AE42) whose file is stored, with the filament in stock."""
    version_ = version(**bambu_file())
    version_.sliced_file.original_name = "cube.gcode.3mf"
    version_.sliced_file.save()
    version_.sliced_file.file.save("cube.gcode.3mf", io.BytesIO(b"PK cube"), save=True)
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"))
    return services.print_job_create(version=version_, **kwargs)


def _staff_with(*perms):
    user = UserFactory(is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def _page(job_):
    return reverse("admin:production_printjob_send_to_printer_page", args=[job_.pk])


# --- send to printer… ----------------------------------------------------------------------------


def test_send_to_printer_lists_only_free_printers_that_can_take_the_job(operator_client, sent):
    fits = _printer("A fits", [_tray(0)])
    _printer("B wrong colour", [_tray(0, colour="#FF0000")])
    _printer("C busy", [_tray(0)], state=PrinterState.PRINTING)
    plate = _printer("D plate full", [_tray(0)])
    PrinterStation.objects.create(printer=plate, plate_clear=False)
    item = _queued()
    page = operator_client.get(_page(item))
    assert page.status_code == 200
    body = page.content.decode()
    assert f'data-printer="{fits.pk}"' in body and "A fits" in body
    for absent in ("B wrong colour", "C busy", "D plate full"):
        assert absent not in body
    change = operator_client.get(reverse("admin:production_printjob_change", args=[item.pk])).content.decode()
    assert _page(item) in change  # the job's page offers the button
    assert not sent  # showing the choice sends nothing


def test_send_to_printer_sends_to_the_chosen_printer_through_dispatch(operator_client, sent):
    _printer("A first", [_tray(0)])
    chosen = _printer("B chosen", [_tray(0)])
    item = _queued()
    response = operator_client.post(_page(item), {"printer": chosen.pk}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:production_printjob_change", args=[item.pk])
    assert f"Job #{item.pk} sent to B chosen." in response.content.decode()
    item.refresh_from_db()
    assert item.status == PrintJobStatus.SENT and item.printer == chosen
    assert [call[:3] for call in sent] == [("upload", "B chosen", "cube.gcode.3mf"),
                                         ("start", "B chosen", "/cube.gcode.3mf")]


def test_a_refusal_of_dispatch_is_shown_as_a_message(operator_client, monkeypatch):
    printer = _printer("Solo", [_tray(0)])
    item = _queued()
    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise Conflict("Job was taken by another dispatcher.")

    monkeypatch.setattr(services, "print_job_dispatch", refuse)
    response = operator_client.post(_page(item), {"printer": printer.pk}, follow=True)
    assert response.status_code == 200
    assert "Job was taken by another dispatcher." in response.content.decode()
    assert calls[0]["job"].pk == item.pk and calls[0]["printer"] == printer
    item.refresh_from_db()
    assert item.status == PrintJobStatus.QUEUED


def test_a_printer_that_is_no_longer_free_is_refused_by_dispatch(operator_client, sent):
    printer = _printer("Was free", [_tray(0)])
    item = _queued()
    live(printer, state=PrinterState.PRINTING)  # became busy after the page was shown
    response = operator_client.post(_page(item), {"printer": printer.pk}, follow=True)
    assert "No printer is free" in response.content.decode()
    item.refresh_from_db()
    assert item.status == PrintJobStatus.QUEUED and not sent and not PrintAttempt.objects.exists()


@pytest.mark.parametrize("forged", ["999999", "abc", ""])
def test_a_forged_printer_is_an_error_message_and_sends_nothing(operator_client, sent, forged):
    _printer("Real", [_tray(0)])
    item = _queued()
    response = operator_client.post(_page(item), {"printer": forged}, follow=True)
    assert response.status_code == 200
    assert "Choose one of the printers listed." in response.content.decode()
    item.refresh_from_db()
    assert item.status == PrintJobStatus.QUEUED and not sent


def test_no_free_printer_says_so_and_a_job_not_queued_cannot_be_sent(operator_client, sent):
    item = _queued()
    body = operator_client.get(_page(item)).content.decode()
    assert 'id="no-free-printer"' in body
    services.print_job_cancel(job=item)
    response = operator_client.get(_page(item), follow=True)
    assert "Only a queued job can be sent; this one is Cancelled." in response.content.decode()
    change = operator_client.get(reverse("admin:production_printjob_change", args=[item.pk])).content.decode()
    assert _page(item) not in change  # no button on a job that does not wait


@pytest.mark.parametrize("forged", ["999999", "abc"])
def test_a_forged_job_is_not_found(operator_client, forged):
    url = reverse("admin:production_printjob_send_to_printer_page", args=[forged])
    assert operator_client.get(url).status_code == 404
    assert operator_client.post(url, {"printer": 1}).status_code == 404


def test_send_to_printer_is_refused_to_others(client, sent):
    printer = _printer("Solo", [_tray(0)])
    item = _queued()
    url = _page(item)
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory(is_staff=False))
    assert client.post(url, {"printer": printer.pk}).status_code == 302
    client.force_login(_staff_with("production.view_printjob"))  # may look, not send
    assert client.get(url).status_code == 403
    assert client.post(url, {"printer": printer.pk}).status_code == 403
    item.refresh_from_db()
    assert item.status == PrintJobStatus.QUEUED and not sent


def test_send_to_printer_needs_the_csrf_token(admin_user, sent):
    printer = _printer("Solo", [_tray(0)])
    item = _queued()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(_page(item), {"printer": printer.pk}).status_code == 403
    item.refresh_from_db()
    assert item.status == PrintJobStatus.QUEUED and not sent


def test_the_bulk_action_leads_to_the_page_for_exactly_one_job(operator_client):
    first, second = job(), job()
    changelist = reverse("admin:production_printjob_changelist")
    response = operator_client.post(changelist, {"action": "send_to_printer", "_selected_action": [first.pk]})
    assert response.status_code == 302 and response["Location"] == _page(first)
    response = operator_client.post(changelist, {"action": "send_to_printer",
                                                 "_selected_action": [first.pk, second.pk]}, follow=True)
    assert "Choose exactly one job to send to a printer of your choice." in response.content.decode()


# --- printer stations, the fleet card and the printer's page --------------------------------------


def _finished(printer, item):
    """The job printed on `printer` and ended; the plate waits to be cleared."""
    PrintAttempt.objects.create(job=item, number=1, printer=printer, outcome=AttemptOutcome.COMPLETED)
    PrintJob.objects.filter(pk=item.pk).update(status=PrintJobStatus.COMPLETED, printer=printer)
    PrinterStation.objects.update_or_create(printer=printer, defaults={"plate_clear": False})


def _card(client, printer):
    cards = client.get(reverse(FLEET_JSON)).json()["printers"]
    return next(card for card in cards if card["id"] == printer.pk)


def _plate_url(printer):
    return reverse("admin:production_printerstation_plate_cleared", args=[printer.pk])


def test_the_fleet_card_shows_the_job_on_the_printer_and_its_next_job(operator_client):
    printing = _printer("Printing", [_tray(0)], state=PrinterState.PRINTING)
    idle = _printer("Idle", [_tray(0)])
    current = _queued(copies=3)
    PrintJob.objects.filter(pk=current.pk).update(status=PrintJobStatus.PRINTING, printer=printing)
    upcoming = _queued()
    card = _card(operator_client, printing)
    (panel,) = card["panels"]
    lines = {line["key"]: line for line in panel["lines"]}
    assert lines["current"]["label"] == "Printing"
    assert lines["current"]["text"] == f"#{current.pk} {current.version.variant} ×3"
    assert lines["current"]["url"] == reverse("admin:production_printjob_change", args=[current.pk])
    assert lines["next"]["text"].startswith(f"#{upcoming.pk} ")
    assert panel["buttons"] == []  # printing: no plate to clear
    idle_lines = {line["key"]: line for line in _card(operator_client, idle)["panels"][0]["lines"]}
    assert "current" not in idle_lines and idle_lines["next"]["text"].startswith(f"#{upcoming.pk} ")


def test_a_printer_whose_file_model_does_not_fit_gets_no_next_job(operator_client):
    a1 = live(BambuPrinterFactory(name="A1 mini", model="A1 mini"), state=PrinterState.IDLE, online=True,
              nozzle_type="hardened_steel", nozzle_diameter_mm=0.4)
    _queued()  # an X1 Carbon file
    lines = {line["key"]: line for line in _card(operator_client, a1)["panels"][0]["lines"]}
    assert lines["next"]["text"] == "none in the queue fits it" and not lines["next"]["url"]


def test_plate_cleared_from_the_fleet_card(operator_client):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    item = job()
    _finished(printer, item)
    (panel,) = _card(operator_client, printer)["panels"]
    plate = next(line for line in panel["lines"] if line["key"] == "plate")
    assert plate["tone"] == "warning" and f"#{item.pk}" in plate["text"] and "Completed" in plate["text"]
    (button,) = panel["buttons"]
    assert (button["key"], button["label"], button["url"]) == ("plate-cleared", "Plate cleared", _plate_url(printer))
    fleet = reverse("admin:printers_fleet")
    response = operator_client.post(button["url"], {"next": fleet})
    assert response.status_code == 302 and response["Location"] == fleet
    assert PrinterStation.objects.get(printer=printer).plate_clear is True
    assert _card(operator_client, printer)["panels"][0]["buttons"] == []


def test_plate_cleared_on_the_printer_page(operator_client):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    _finished(printer, job())
    change = reverse("admin:printers_printer_change", args=[printer.pk])
    body = operator_client.get(change).content.decode()
    assert 'data-panel="production"' in body and f'action="{_plate_url(printer)}"' in body
    assert "csrfmiddlewaretoken" in body and f'name="next" value="{change}"' in body
    response = operator_client.post(_plate_url(printer), {"next": change}, follow=True)
    assert response.redirect_chain[-1][0] == change
    assert "Done: plate cleared, ready for the next job." in response.content.decode()
    assert PrinterStation.objects.get(printer=printer).plate_clear is True


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/x", ""])
def test_plate_cleared_never_redirects_off_the_site(operator_client, target):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    _finished(printer, job())
    response = operator_client.post(_plate_url(printer), {"next": target})
    assert response["Location"] == reverse("admin:production_printerstation_changelist")


def test_a_get_or_another_method_clears_no_plate(operator_client):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    _finished(printer, job())
    assert operator_client.get(_plate_url(printer)).status_code == 405
    assert operator_client.put(_plate_url(printer)).status_code == 405
    assert PrinterStation.objects.get(printer=printer).plate_clear is False


@pytest.mark.parametrize("forged", ["999999", "abc"])
def test_plate_cleared_for_a_forged_printer_is_not_found(operator_client, forged):
    url = reverse("admin:production_printerstation_plate_cleared", args=[forged])
    assert operator_client.post(url).status_code == 404


def test_plate_cleared_is_refused_to_others_and_needs_the_csrf_token(client, admin_user):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    _finished(printer, job())
    url = _plate_url(printer)
    assert client.post(url).status_code == 302  # to the login page
    client.force_login(UserFactory(is_staff=False))
    assert client.post(url).status_code == 302
    viewer = _staff_with("production.view_printjob", "production.view_printerstation", "printers.view_printer")
    client.force_login(viewer)
    assert client.post(url).status_code == 403
    assert _card(client, printer)["panels"][0]["buttons"] == []  # and is not offered the button
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(url).status_code == 403
    assert PrinterStation.objects.get(printer=printer).plate_clear is False


def test_staff_who_may_not_see_print_jobs_get_no_panel(client):
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    _finished(printer, job())
    client.force_login(_staff_with("printers.view_printer"))
    assert _card(client, printer)["panels"] == []
    assert 'data-panel="production"' not in client.get(
        reverse("admin:printers_printer_change", args=[printer.pk])).content.decode()


def test_the_station_list_shows_plate_current_and_next_job(operator_client):
    printing = _printer("Printing", [_tray(0)], state=PrinterState.PRINTING)
    done = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    current = _queued()
    PrintJob.objects.filter(pk=current.pk).update(status=PrintJobStatus.PRINTING, printer=printing)
    PrinterStation.objects.create(printer=printing, plate_clear=False)
    _finished(done, job())
    upcoming = _queued()
    body = operator_client.get(reverse("admin:production_printerstation_changelist")).content.decode()
    assert body.count(reverse("admin:production_printjob_change", args=[current.pk])) == 1
    assert body.count(reverse("admin:production_printjob_change", args=[upcoming.pk])) == 2  # next of both
    assert "to clear" in body and "in use" in body


# --- a job's page --------------------------------------------------------------------------------


def test_the_job_page_shows_attempts_slots_ledger_and_cost(operator_client):
    item = job()
    printer = _printer("Done", [_tray(0)], state=PrinterState.FINISHED)
    fed = spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="500")
    attempt = PrintAttempt.objects.create(job=item, number=1, printer=printer, outcome=AttemptOutcome.COMPLETED,
                                          file_name="part.gcode")
    SlotAllocation.objects.create(attempt=attempt, slot=1, spool=fed, grams_planned=Decimal("12.5"),
                                  grams_booked=Decimal("12.5"))
    inventory_services.spool_use(spool=fed, grams_used="12.5", kind=MovementKind.USED, idempotency_key="t:1",
                                 reason=f"Print job #{item.pk}", source_type=SourceType.PRINT_JOB,
                                 source_id=str(item.pk))
    other = job()
    inventory_services.spool_use(spool=fed, grams_used="7", kind=MovementKind.USED, idempotency_key="t:2",
                                 reason="another job", source_type=SourceType.PRINT_JOB, source_id=str(other.pk))
    PrintJob.objects.filter(pk=item.pk).update(
        cost_currency="EUR", cost_material=Decimal("0.31"), cost_energy=Decimal("0.05"),
        cost_machine=Decimal("0.40"), cost_labour=Decimal("1.00"), cost_total=Decimal("1.76"))
    body = operator_client.get(reverse("admin:production_printjob_change", args=[item.pk])).content.decode()
    assert "part.gcode" in body  # the attempts tab
    assert reverse("admin:production_slotallocation_change", args=[SlotAllocation.objects.get().pk]) in body
    ledger = body[body.index("data-ledger"):]
    ledger = ledger[:ledger.index("</table>")]
    assert fed.code in ledger and "-12.50 g" in ledger and f"Print job #{item.pk}" in ledger
    assert "another job" not in ledger  # only this job's rows
    cost = body[body.index("data-cost"):]
    cost = cost[:cost.index("</table>")]
    for text in ("0.31 EUR", "0.05 EUR", "0.40 EUR", "1.00 EUR", "1.76 EUR"):
        assert text in cost


def test_a_job_without_bookings_or_cost_says_so(operator_client):
    item = job()
    body = operator_client.get(reverse("admin:production_printjob_change", args=[item.pk])).content.decode()
    assert "Nothing booked yet" in body and "Not computed yet" in body
