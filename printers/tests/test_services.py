from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.exceptions import InvalidInput
from printers import services
from printers.choices import Driver, JobOutcome, PrinterState
from printers.exceptions import CredentialsError
from printers.models import Printer, PrinterJob, StateTransition, TelemetrySample
from printers.state import NormalisedState, offline_state
from printers.tests.factories import PrinterFactory

pytestmark = pytest.mark.django_db
T0 = timezone.now().replace(microsecond=0)


def at(seconds: int):
    return T0 + timedelta(seconds=seconds)


def s(state, **kw):
    return NormalisedState(state=state, **kw)


def apply(printer, sequence, *, step=30):
    for i, state in enumerate(sequence):
        services.printer_apply_state(printer=printer, state=state, at=at(i * step))


# --- credentials -------------------------------------------------------------------------


def test_credentials_are_encrypted_at_rest_and_never_shown(settings, caplog):
    printer = services.printer_create(name="Core One A", driver=Driver.PRUSALINK, host="10.0.0.5",
                                      secret="s3cret-pass")
    assert b"s3cret-pass" not in bytes(printer.credentials_ciphertext)
    credentials = services.printer_get_credentials(printer=printer)
    assert credentials.username == "maker" and credentials.secret == "s3cret-pass"
    for text in (repr(printer), str(printer), repr(credentials), str(credentials), caplog.text):
        assert "s3cret-pass" not in text


def test_credentials_with_a_configured_fernet_key_and_with_a_changed_key(settings):
    from cryptography.fernet import Fernet

    settings.PRINTER_CREDENTIALS_KEY = Fernet.generate_key().decode()
    printer = services.printer_create(name="X", driver=Driver.BAMBU, host="10.0.0.6", secret="12345678")
    assert services.printer_get_credentials(printer=printer).username == "bblp"
    settings.PRINTER_CREDENTIALS_KEY = "some other passphrase"
    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        services.printer_get_credentials(printer=printer)


def test_empty_secret_and_invalid_printer_are_refused():
    printer = PrinterFactory()
    with pytest.raises(InvalidInput, match="password or access code"):
        services.printer_set_credentials(printer=printer, secret="  ")
    with pytest.raises(InvalidInput, match="port"):
        services.printer_create(name="bad", driver=Driver.PRUSALINK, host="h", port=70000)
    assert not Printer.objects.filter(name="bad").exists()


# --- lifecycle through printer_apply_state ---------------------------------------------------


def test_job_started_and_finished_once_with_signals(django_capture_on_commit_callbacks, signals_log):
    printer = PrinterFactory()
    with django_capture_on_commit_callbacks(execute=True):
        apply(printer, [
            s("idle"), s("printing", job_key="7", current_file="a.bgcode", progress_percent=10),
            s("printing", job_key="7", progress_percent=60), s("finished", job_key="7", progress_percent=100),
            s("finished", job_key="7", progress_percent=100), s("idle"),
        ])
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.COMPLETED and job.progress_reached == 100
    assert job.duration_seconds == 60 and job.file_name == "a.bgcode" and job.observed_start
    assert signals_log == [("started", job.pk, False), ("finished", job.pk, "completed")]
    assert list(StateTransition.objects.order_by("at").values_list("from_state", "to_state")) == [
        ("offline", "idle"), ("idle", "printing"), ("printing", "finished"), ("finished", "idle")]


def test_replaying_the_same_state_changes_nothing(django_capture_on_commit_callbacks, signals_log):
    printer = PrinterFactory()
    state = s("printing", job_key="3", progress_percent=5)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            services.printer_apply_state(printer=printer, state=s("idle"), at=at(0))
        for _ in range(3):
            services.printer_apply_state(printer=printer, state=state, at=at(10))
    assert PrinterJob.objects.count() == 1 and StateTransition.objects.count() == 2
    assert TelemetrySample.objects.count() == 2
    assert len(signals_log) == 1


def test_first_report_after_connecting_is_a_sync(signals_log, django_capture_on_commit_callbacks):
    printer = PrinterFactory()
    with django_capture_on_commit_callbacks(execute=True):
        apply(printer, [s("finished", job_key="41")])  # a job from before the app knew the printer
    assert PrinterJob.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        services.printer_apply_state(printer=printer, state=offline_state("gone"), at=at(100))
        services.printer_apply_state(printer=printer, state=s("printing", job_key="42"), at=at(200))
    job = PrinterJob.objects.get()
    assert job.observed_start is False and signals_log == [("started", job.pk, True)]


def test_a_restart_after_a_killed_listener_is_a_sync_not_a_made_up_job(django_capture_on_commit_callbacks,
                                                                        signals_log):
    printer = PrinterFactory(driver=Driver.BAMBU)
    apply(printer, [s("idle"), s("printing", job_key="a", current_file="benchy", progress_percent=40.0,
                                 remaining_seconds=600)])  # at 0 and 30 s
    opened = PrinterJob.objects.get()
    # run_printers is killed (no clean shutdown: the printer still shows printing); the first report
    # of the next one is another job's FINISH.
    with django_capture_on_commit_callbacks(execute=True):
        live = services.printer_apply_state(printer=printer, at=at(90), sync=True, state=s(
            "finished", job_key="715417865", current_file="sensor_altanlås_v2_v3", progress_percent=100.0))
    assert live.state == PrinterState.FINISHED and live.job_key == "715417865"  # synced
    job = PrinterJob.objects.get()  # no job made up for the FINISH nobody saw begin
    assert job.pk == opened.pk and job.outcome == JobOutcome.CANCELLED and job.progress_reached == 40.0
    assert job.started_at == at(30) and job.ended_at == at(90) and job.duration_seconds == 60
    assert signals_log == [("finished", job.pk, "cancelled")]  # no job_started, no completed job
    assert StateTransition.objects.filter(to_state="finished").get().reason == "reconnected"


def test_our_job_that_ended_while_nobody_listened_closes_at_its_estimated_end(django_capture_on_commit_callbacks,
                                                                              signals_log):
    printer = PrinterFactory(driver=Driver.BAMBU)
    apply(printer, [s("idle"), s("printing", job_key="7", current_file="benchy", progress_percent=50.0,
                                 remaining_seconds=600)])
    with django_capture_on_commit_callbacks(execute=True):
        services.printer_apply_state(printer=printer, at=at(3600), sync=True, state=s(
            "finished", job_key="7", current_file="benchy", progress_percent=100.0, remaining_seconds=0))
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.COMPLETED and job.progress_reached == 100.0
    # The last report (30 s) said 600 s were left: the end is put there, not at the reconnect.
    assert job.ended_at == at(630) and job.duration_seconds == 600 and "not listening" in job.end_reason
    assert signals_log == [("finished", job.pk, "completed")]
    with django_capture_on_commit_callbacks(execute=True):  # the sticky FINISH again changes nothing
        services.printer_apply_state(printer=printer, at=at(3700), state=s("finished", job_key="7"))
    assert len(signals_log) == 1 and PrinterJob.objects.count() == 1


def test_a_report_after_a_gap_nobody_watched_is_a_sync(django_capture_on_commit_callbacks, signals_log):
    """The PrusaLink poller (the task cluster) was down: no failures were counted, the row says printing."""
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("printing", job_key="100", current_file="a.bgcode", progress_percent=10.0,
                                 remaining_seconds=540)])
    late = at(3600)
    assert late - at(30) > services.unwatched_gap()
    with django_capture_on_commit_callbacks(execute=True):
        services.printer_apply_state(printer=printer, at=late, state=s("finished", job_key="101",
                                                                        progress_percent=100.0))
    job = PrinterJob.objects.get()  # job 101 ran unseen: not made up; job 100 ended unseen
    assert job.external_job_id == "100" and job.outcome == JobOutcome.CANCELLED and job.ended_at == at(570)
    assert signals_log == [("finished", job.pk, "cancelled")]
    # Within the window the same report would be a job that ran between two polls.
    other = PrinterFactory()
    apply(other, [s("idle"), s("printing", job_key="100", progress_percent=10.0),
                  s("finished", job_key="101", progress_percent=100.0)])
    assert list(PrinterJob.objects.filter(printer=other).order_by("id").values_list("external_job_id", "outcome")) \
        == [("100", "cancelled"), ("101", "completed")]


def test_the_unwatched_gap_follows_the_settings(settings):
    settings.BAMBU_WATCHDOG_SECONDS = 60
    settings.PRUSALINK_POLL_SECONDS, settings.PRINTER_HTTP_TIMEOUT_SECONDS = 30, 5
    assert services.unwatched_gap() == timedelta(seconds=140)  # four polls of 35 s
    settings.PRUSALINK_POLL_SECONDS = 300
    assert services.unwatched_gap() == timedelta(seconds=4 * 305)
    settings.BAMBU_WATCHDOG_SECONDS = 900
    assert services.unwatched_gap() == timedelta(seconds=1800)


def test_job_ended_while_offline_is_closed_on_reconnect():
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("printing", job_key="5", progress_percent=40), offline_state("timeout"),
                    s("cancelled", job_key="5", progress_percent=40)])
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.CANCELLED and job.progress_reached == 40


def test_offline_keeps_the_job_open_and_the_last_values():
    printer = PrinterFactory()
    apply(printer, [s("printing", job_key="5", nozzle_temp_c=215.0), offline_state("timeout")])
    live = printer.live
    live.refresh_from_db()
    assert live.state == "offline" and not live.online and live.nozzle_temp_c == 215.0
    assert PrinterJob.objects.get().outcome == JobOutcome.RUNNING


@pytest.mark.parametrize(("end", "outcome"), [("finished", "completed"), ("cancelled", "cancelled"),
                                              ("failed", "failed")])
def test_outcomes(end, outcome):
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("preparing"), s("printing"), s("paused"), s("needs_attention"), s("printing"),
                    s(end)])
    assert list(PrinterJob.objects.values_list("outcome", flat=True)) == [outcome]


def test_job_id_disappearing_closes_the_job_by_progress():
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("printing", job_key="1", progress_percent=30), s("idle"),
                    s("printing", job_key="2", progress_percent=99.95), s("idle")])
    assert list(PrinterJob.objects.order_by("started_at").values_list("external_job_id", "outcome")) == [
        ("1", "cancelled"), ("2", "completed")]


def test_new_job_id_between_polls_closes_the_old_and_starts_the_new():
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("printing", job_key="1", progress_percent=50),
                    s("printing", job_key="2", progress_percent=1)])
    assert list(PrinterJob.objects.order_by("started_at").values_list("external_job_id", "outcome")) == [
        ("1", "cancelled"), ("2", "running")]


def test_bambu_next_job_from_sticky_finish_without_a_job_id():
    printer = PrinterFactory(driver=Driver.BAMBU)
    apply(printer, [s("idle"), s("printing"), s("finished"), s("finished"), s("preparing"), s("printing"),
                    s("cancelled")])
    assert list(PrinterJob.objects.order_by("started_at").values_list("outcome", flat=True)) == [
        "completed", "cancelled"]


def test_a_job_that_ran_entirely_between_two_polls_is_recorded_once():
    printer = PrinterFactory()
    apply(printer, [s("idle"), s("finished", job_key="9", progress_percent=100),
                    s("finished", job_key="9", progress_percent=100)])
    job = PrinterJob.objects.get()
    assert job.external_job_id == "9" and job.outcome == JobOutcome.COMPLETED and not job.observed_start


def test_older_reports_are_ignored():
    printer = PrinterFactory()
    services.printer_apply_state(printer=printer, state=s("printing"), at=at(100))
    services.printer_apply_state(printer=printer, state=s("idle"), at=at(50))
    printer.live.refresh_from_db()
    assert printer.live.state == PrinterState.PRINTING


def test_three_failures_make_a_printer_offline_and_a_report_resets_the_count():
    printer = PrinterFactory()
    services.printer_apply_state(printer=printer, state=s("idle"), at=at(0))
    for i in range(2):
        live = services.printer_record_failure(printer=printer, error="timed out", at=at(i + 1))
        assert live.state == PrinterState.IDLE
    live = services.printer_record_failure(printer=printer, error="timed out", at=at(3))
    assert live.state == PrinterState.OFFLINE and live.consecutive_failures == 3
    assert StateTransition.objects.filter(to_state="offline").get().reason == "timed out"
    live = services.printer_apply_state(printer=printer, state=s("idle"), at=at(4))
    assert live.consecutive_failures == 0 and live.state == PrinterState.IDLE


def test_telemetry_sampled_at_most_once_a_minute_and_purged():
    printer = PrinterFactory()
    for i in range(10):
        services.printer_apply_state(printer=printer, state=s("printing", nozzle_temp_c=200.0 + i), at=at(i * 15))
    assert TelemetrySample.objects.count() == 3  # t=0, 60, 120
    TelemetrySample.objects.create(printer=printer, at=timezone.now() - timedelta(days=40))
    assert services.telemetry_purge(older_than_days=30) == 1
    with pytest.raises(InvalidInput):
        services.telemetry_purge(older_than_days=0)



# --- many printers at once -----------------------------------------------------------------------

SCRIPTS = {  # one printer's reports, 20 s apart: a finished job, a cancel, a failure, a job missed, a reconnect
    "completed": [s("idle", nozzle_temp_c=25.0), s("preparing", job_key="1", current_file="a.3mf"),
                  *[s("printing", job_key="1", current_file="a.3mf", progress_percent=float(p), nozzle_temp_c=200.0 + p)
                    for p in range(0, 100, 10)], s("finished", job_key="1", progress_percent=100.0), s("idle")],
    "cancelled": [s("idle"), s("printing", job_key="2", progress_percent=30.0),
                  s("cancelled", job_key="2", progress_percent=31.0, reason="cancelled on the printer"), s("idle")],
    "failed": [s("printing", job_key="3", progress_percent=5.0), s("paused", job_key="3", progress_percent=6.0),
               s("failed", job_key="3", progress_percent=6.0), s("failed", job_key="3")],
    "missed": [s("idle"), s("finished", job_key="4", progress_percent=100.0), s("finished", job_key="4")],
    "reconnect": [s("idle"), s("printing", job_key="5", progress_percent=40.0), offline_state("timeout"),
                  s("printing", job_key="6", progress_percent=2.0), s("printing", job_key="6", progress_percent=9.0)],
}


def _record(printer):
    printer.live.refresh_from_db()
    return (
        {name: getattr(printer.live, name) for name in ("state", "online", "progress_percent", "nozzle_temp_c",
                                                         "job_key", "last_report_at", "last_sample_at", "last_error")},
        list(StateTransition.objects.filter(printer=printer).order_by("at", "id").values_list(
            "from_state", "to_state", "at", "reason")),
        list(PrinterJob.objects.filter(printer=printer).order_by("started_at", "id").values_list(
            "external_job_id", "outcome", "progress_reached", "started_at", "ended_at", "observed_start")),
        list(TelemetrySample.objects.filter(printer=printer).order_by("at").values_list("at", "nozzle_c",
                                                                                        "progress_percent")),
    )


def test_many_printers_at_once_are_recorded_exactly_as_each_on_its_own(django_capture_on_commit_callbacks,
                                                                       signals_log):
    alone = {name: PrinterFactory() for name in SCRIPTS}
    with django_capture_on_commit_callbacks(execute=True):
        for name, printer in alone.items():
            apply(printer, SCRIPTS[name], step=20)
    signals_alone = len(signals_log)
    together = {name: PrinterFactory() for name in SCRIPTS}
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(max(map(len, SCRIPTS.values()))):
            services.printer_apply_states(reports=[(together[name], script[index], at(index * 20))
                                                   for name, script in SCRIPTS.items() if index < len(script)])
    for name in SCRIPTS:
        assert _record(together[name]) == _record(alone[name]), name
    outcomes = dict(PrinterJob.objects.filter(printer__in=together.values()).values_list("external_job_id", "outcome"))
    assert outcomes == {"1": "completed", "2": "cancelled", "3": "failed", "4": "completed", "5": "cancelled",
                        "6": "running"}
    assert len(signals_log) == 2 * signals_alone  # every start and end announced once, with the job's id
    assert all(job_id is not None for _kind, job_id, _detail in signals_log)


def test_writing_many_printers_costs_the_same_few_queries_as_writing_three(django_assert_max_num_queries):
    for count in (3, 40):
        printers = [PrinterFactory() for _ in range(count)]
        services.printer_apply_states(reports=[(p, s("idle"), at(0)) for p in printers])
        finished = s("finished", job_key="9", progress_percent=100.0)
        with django_assert_max_num_queries(9):  # starts and transitions for all of them
            services.printer_apply_states(reports=[(p, s("printing", job_key="9", progress_percent=1.0), at(10))
                                                   for p in printers])
        with django_assert_max_num_queries(9):  # telemetry and progress for all of them
            services.printer_apply_states(reports=[(p, s("printing", job_key="9", progress_percent=50.0,
                                                         nozzle_temp_c=215.0), at(20)) for p in printers])
        with django_assert_max_num_queries(9):  # ends for all of them
            services.printer_apply_states(reports=[(p, finished, at(30)) for p in printers])
        assert PrinterJob.objects.filter(printer__in=printers, outcome=JobOutcome.COMPLETED).count() == count


def test_many_printers_at_once_refuse_two_reports_of_one_printer_and_skip_older_ones():
    printer, other = PrinterFactory(), PrinterFactory()
    services.printer_apply_states(reports=[(printer, s("printing", job_key="1"), at(100)), (other, s("idle"), at(0))])
    with pytest.raises(ValueError, match="one report per printer"):
        services.printer_apply_states(reports=[(other, s("busy"), at(10)), (other, s("idle"), at(11))])
    services.printer_apply_states(reports=[(printer, s("idle"), at(50)), (other, s("busy"), at(50))])
    assert dict(StateTransition.objects.filter(at=at(50)).values_list("printer_id", "to_state")) == {
        other.pk: "busy"}
    printer.live.refresh_from_db()
    assert printer.live.state == PrinterState.PRINTING  # the older report changed nothing
