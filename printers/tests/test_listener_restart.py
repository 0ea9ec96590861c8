"""run_printers that dies without its clean shutdown: the first report of the next one is a sync.

A killed listener (kill -9, out of memory, a reboot) leaves the live rows as they were — printing —
and the next listener's first report, e.g. the FINISH of another job, must not be taken for a
change that was seen: no job made up from it, no job_started, no completed job.
"""

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time

from printers.choices import JobOutcome, PrinterState
from printers.drivers.bambu.client import BambuConnection, StateEvent
from printers.listener import Listener
from printers.models import PrinterJob, StateTransition
from printers.tests.conftest import bambu_corpus_report
from printers.tests.mqtt import ACCESS_CODE, SERIAL, live, make_sim, state_is, step_until
from tests.conftest import ROOT

FINISH_REPORT = "hab_p1p_noams_finish_extspool_pushall_getversion.json"  # a real P1-series FINISH
FINISH_TASK_ID = "715417865"


def show_corpus_report(sim, name: str) -> None:
    """The simulated printer now reports exactly what a real one reported (it ran another job meanwhile)."""
    body, _version = bambu_corpus_report(name)
    with sim._lock:
        sim.state = copy.deepcopy(body)
        sim.state.pop("sequence_id", None)
        sim._last_sent = {}


def test_the_first_report_after_a_killed_listener_is_a_sync(broker, bambu_printer, fast_mqtt, signals_log,
                                                            django_capture_on_commit_callbacks):
    sim = make_sim(broker, print_ticks=100_000).start()
    try:
        killed = Listener()
        step_until(killed, state_is(bambu_printer, PrinterState.IDLE), what="idle")
        sim.start_job()
        step_until(killed, state_is(bambu_printer, PrinterState.PRINTING), what="printing")
        killed.network.stop()  # its connections vanish; nothing of the clean shutdown is written
        opened = PrinterJob.objects.get()
        assert live(bambu_printer).state == PrinterState.PRINTING

        show_corpus_report(sim, FINISH_REPORT)
        restarted = Listener()
        try:
            with django_capture_on_commit_callbacks(execute=True):
                step_until(restarted, lambda: live(bambu_printer).job_key == FINISH_TASK_ID, what="synced")
                restarted.flush(everything=True)
        finally:
            restarted.close()
    finally:
        sim.stop()
    job = PrinterJob.objects.get()  # nothing made up for the FINISH whose start nobody saw
    assert job.pk == opened.pk and job.outcome == JobOutcome.CANCELLED  # ours ended unseen, short of 100 %
    assert signals_log == [("finished", job.pk, "cancelled")]  # no job_started, no completed job
    synced = StateTransition.objects.filter(printer=bambu_printer, to_state=PrinterState.FINISHED).get()
    assert synced.from_state == PrinterState.PRINTING and synced.reason == "reconnected"
    assert job.started_at <= job.ended_at <= synced.at


def test_a_printer_the_next_listener_cannot_reach_is_shown_offline(broker, bambu_printer, fast_mqtt):
    sim = make_sim(broker, print_ticks=100_000).start()
    killed = Listener()
    try:
        step_until(killed, state_is(bambu_printer, PrinterState.IDLE), what="idle")
        sim.start_job()
        step_until(killed, state_is(bambu_printer, PrinterState.PRINTING), what="printing")
    finally:
        killed.network.stop()  # killed: the printer still shows printing ...
        sim.stop()  # ... and is switched off before the next listener starts
    restarted = Listener()
    try:
        step_until(restarted, state_is(bambu_printer, PrinterState.OFFLINE), what="offline after the watchdog")
        assert live(bambu_printer).last_error == "no report since the printer listener started"
    finally:
        restarted.close()
    assert PrinterJob.objects.get().outcome == JobOutcome.RUNNING  # offline ends nothing


def test_the_first_report_of_every_connection_says_so(broker, sim, fast_mqtt):
    events = []
    connection = BambuConnection(printer_id=1, host=broker.host, port=broker.port, serial=SERIAL,
                                 access_code=ACCESS_CODE, on_event=events.append, watchdog_seconds=30,
                                 backoff_min=0.05, backoff_max=0.2).start()

    def reports():
        return [event for event in events if isinstance(event, StateEvent)]

    try:
        step_until(None, lambda: len(reports()) >= 3, what="three reports")
        broker.restart()
        seen = len(reports())
        step_until(None, lambda: len(reports()) >= seen + 3, timeout=12, what="reports after the reconnect")
    finally:
        connection.stop()
    assert [event.first for event in reports()].count(True) == 2
    assert reports()[0].first and reports()[seen].first


# --- the real thing: run_printers in a process of its own, killed with SIGKILL ----------------------


class Deployment:
    """A database file and the environment of run_printers processes that share it."""

    def __init__(self, tmp_path, broker):
        self.db = tmp_path / "db.sqlite3"
        self.env = {"DATABASE_URL": f"sqlite:///{self.db}", "FABLAB_VAR_DIR": str(tmp_path / "var"),
                    "DJANGO_SETTINGS_MODULE": "fablab.settings", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "BAMBU_PLAIN_MQTT_PORTS": "", "PRINTER_RECONCILE_SECONDS": "1"}
        self.log = tmp_path / "run_printers.log"
        self.manage("migrate", "-v0")
        self.manage("shell", "-c", (
            "from printers import services; services.printer_create(name='P1S', driver='bambu', "
            f"host={broker.host!r}, port={broker.port}, model='A1', serial={SERIAL!r}, secret={ACCESS_CODE!r})"))

    def manage(self, *args):
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT, check=True,
                       timeout=600, capture_output=True)

    def run_printers(self) -> subprocess.Popen:
        with self.log.open("a") as log:
            return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_printers"], env=self.env,
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.db, timeout=10) as db:
            return db.execute(sql).fetchall()

    def wait_for(self, sql: str, expected, process: subprocess.Popen, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log.read_text()
            if self.query(sql) == expected:
                return
            time.sleep(0.1)
        raise AssertionError(f"{sql} never gave {expected}: {self.query(sql)}\n{self.log.read_text()}")


def test_run_printers_killed_with_sigkill_then_restarted_records_no_made_up_job(broker, tmp_path):
    sim = make_sim(broker, print_ticks=100_000).start()
    processes = []
    try:
        deployment = Deployment(tmp_path, broker)
        sim.start_job()
        first = deployment.run_printers()
        processes.append(first)
        deployment.wait_for("SELECT state FROM printers_printerlivestate", [("printing",)], first)
        deployment.wait_for("SELECT outcome FROM printers_printerjob", [("running",)], first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert deployment.query("SELECT state FROM printers_printerlivestate") == [("printing",)]

        show_corpus_report(sim, FINISH_REPORT)
        second = deployment.run_printers()
        processes.append(second)
        deployment.wait_for("SELECT state, job_key FROM printers_printerlivestate",
                            [("finished", FINISH_TASK_ID)], second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0, deployment.log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        sim.stop()
    jobs = deployment.query("SELECT external_job_id, outcome, started_at <= ended_at FROM printers_printerjob")
    assert len(jobs) == 1, jobs  # the job seen printing; none made up for the FINISH
    external_id, outcome, ends_after_start = jobs[0]
    assert external_id != FINISH_TASK_ID and outcome == "cancelled" and ends_after_start
    assert ("printing", "finished", "reconnected") in deployment.query(
        "SELECT from_state, to_state, reason FROM printers_statetransition")
    # The clean stop of the second process shows the printer offline, as before.
    assert deployment.query("SELECT state FROM printers_printerlivestate") == [("offline",)]

