"""The demo's printers from a fresh clone: no test corpus, simulated printers that come online and print the
catalog's sample files to the end, recorded as completed jobs.

Real MQTT (a Mosquitto on loopback, plain like the demo's local broker) and real HTTP; `simulate_printers`
runs in its own process, as `serve --with-printers` starts it; run_printers' listener and the PrusaLink
poll run here.
"""

import io
import os
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from catalog.samples import build_file, sample_models
from printers import services
from printers.choices import Driver, JobOutcome, PrinterState
from printers.demo import DEMO_ACCESS_CODE, DEMO_FTPS_PORT, demo_files_dir, demo_printer_specs
from printers.listener import Listener
from printers.models import Printer, PrinterJob, PrinterLiveState
from printers.simulators.broker import MosquittoBroker
from printers.simulators.printfile import read_print_file
from tests.conftest import ROOT, free_port


def sample_versions():
    return [version for model in sample_models() for variant in model.variants for version in variant.versions]


@pytest.mark.parametrize("version", sample_versions(), ids=lambda version: f"{version.file_name}")
def test_the_simulators_read_each_sample_files_time_and_layers_as_the_file_states_them(version):
    sample = build_file(version)
    plan = read_print_file(sample.name, sample.data)
    assert plan.source == "gcode"  # read from the G-code itself (deflated bgcode blocks included)
    assert round(plan.total_seconds) == round(sample.stats.seconds)
    assert plan.layer_count == sample.stats.layer_count
    assert plan.marks and plan.marks[-1].percent == 100  # the M73 lines the printer shows


def _simulators(env_corpus, files, broker, prusa_port: int, var_dir) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "FABLAB_"))}
    env.update({"FABLAB_CORPUS": str(env_corpus), "FABLAB_VAR_DIR": str(var_dir),
                "DJANGO_SETTINGS_MODULE": "fablab.settings"})
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "simulate_printers", "--bambu", "2", "--prusa", "1",
         "--auto-jobs", "--files", str(files), "--speed", "40", "--job-gap", "3", "--tick", "0.25",
         "--host", broker.host, "--port", str(broker.port), "--prusa-port", str(prusa_port), "--seconds", "150"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.django_db
def test_the_demo_printers_come_online_and_complete_sample_prints_without_the_corpus(tmp_path, settings):
    corpus = tmp_path / "empty-corpus"
    corpus.mkdir()
    settings.FABLAB_CORPUS = corpus
    settings.VAR_DIR = tmp_path / "var"
    settings.BAMBU_WATCHDOG_SECONDS = 10
    settings.BAMBU_BACKOFF_MIN_SECONDS, settings.BAMBU_BACKOFF_MAX_SECONDS = 0.05, 0.5
    settings.PRINTER_STATE_WRITE_SECONDS, settings.PRINTER_RECONCILE_SECONDS = 0.3, 0.2
    serials = [spec["serial"] for spec in demo_printer_specs() if spec["driver"] == Driver.BAMBU]
    users = {"bblp": DEMO_ACCESS_CODE, **{serial: DEMO_ACCESS_CODE for serial in serials}}
    with MosquittoBroker(tmp_path / "broker", users=users) as broker:
        settings.MQTT_HOST, settings.MQTT_PORT = broker.host, broker.port
        settings.BAMBU_PLAIN_MQTT_PORTS = (broker.port,)

        out = io.StringIO()
        call_command("demo", stdout=out)  # the demo's data: catalog, stock, printers and their files
        assert "3 simulated printers with" in out.getvalue()
        files = demo_files_dir()
        on_storage = {folder.name: sorted(path.name for path in folder.iterdir()) for folder in files.iterdir()}
        assert set(on_storage) == {"X1C", "A1", "COREONE"} and all(on_storage.values())
        prusa = Printer.objects.get(driver=Driver.PRUSALINK)
        prusa_port = free_port()
        services.printer_update(printer=prusa, port=prusa_port)  # the demo's port may be taken on this machine
        printers = list(Printer.objects.all())
        folder_of = {printer.pk: {"X1C": "X1C", "A1": "A1", "Core One": "COREONE"}[printer.model]
                     for printer in printers}

        process = _simulators(corpus, files, broker, prusa_port, tmp_path / "sim-var")
        listener = Listener()
        online, completed = set(), {}
        try:
            deadline = time.monotonic() + 120
            next_poll = 0.0
            while time.monotonic() < deadline and len(completed) < len(printers):
                listener.step()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + 0.5
                    try:
                        services.printer_poll(printer=prusa)
                    except Exception:  # noqa: BLE001 - not up yet: the poll records it, the next one tries again
                        pass
                for live in PrinterLiveState.objects.filter(printer__in=printers):
                    if live.state != PrinterState.OFFLINE:
                        online.add(live.printer_id)
                for job in PrinterJob.objects.filter(outcome=JobOutcome.COMPLETED):
                    completed.setdefault(job.printer_id, job)
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.05)
            listener.flush(everything=True)
        finally:
            listener.close()
            process.terminate()
            output, _ = process.communicate(timeout=30)
    assert "FABLAB_CORPUS" not in output and "Traceback" not in output, output
    assert online == {printer.pk for printer in printers}, output
    assert set(completed) == {printer.pk for printer in printers}, (completed, output)
    for printer_id, job in completed.items():
        assert job.progress_reached == 100 and job.duration_seconds is not None
        names = on_storage[folder_of[printer_id]]
        shown = {name.removesuffix(".gcode.3mf") for name in names} | set(names)  # Bambu shows the job's name
        assert job.file_name in shown, (job, names)


class _Finished:
    """A child process that has already ended (serve stops everything when a required one ends)."""

    pid = 0
    returncode = 0

    def poll(self):
        return 0

    def wait(self, timeout=None):
        return 0


def test_serve_runs_the_simulated_printers_with_the_demos_files(tmp_path, settings, monkeypatch):
    import signal

    from fablab.management.commands import serve

    started = []
    envs = []
    monkeypatch.setattr(serve.subprocess, "Popen", lambda command, **kwargs: started.append(command)
                        or envs.append(kwargs["env"]) or _Finished())
    monkeypatch.setattr(serve, "_signal_group", lambda process, signum: None)
    monkeypatch.setattr(serve.time, "sleep", lambda seconds: None)
    previous = signal.getsignal(signal.SIGTERM)
    settings.VAR_DIR = tmp_path / "var"
    settings.HOME_ASSISTANT_MQTT_URL = ""
    try:
        for with_files in (False, True):
            if with_files:
                (demo_files_dir() / "A1").mkdir(parents=True)
            started.clear()
            with pytest.raises(SystemExit):
                call_command("serve", "--with-printers", stdout=io.StringIO(), stderr=io.StringIO())
            simulators = next(command for command in started if "simulate_printers" in command)
            assert simulators[simulators.index("simulate_printers"):][:9] == [
                "simulate_printers", "--bambu", "2", "--prusa", "1", "--ftps-port", str(DEMO_FTPS_PORT),
                "--clear-plate-after", str(serve.DEMO_CLEAR_PLATE_SECONDS)]
            assert "--auto-jobs" not in simulators  # the print queue feeds them
            assert ("--files" in simulators) is with_files
            if with_files:
                assert simulators[simulators.index("--files") + 1] == str(demo_files_dir())
            assert any("run_printers" in command for command in started)
            assert all(env.get("DEMO_PLATES_CLEAR_THEMSELVES") == "1" for env in envs)  # idle means cleared
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_simulators_fed_by_the_queue_clear_their_plate_after_a_while_and_wait_for_the_next_file():
    from printers.simulators.bambu import FakeBambuPrinter
    from printers.simulators.prusalink import PrusaLinkSimulator

    a1 = next(version for version in sample_versions() if version.file_name.endswith("_A1.gcode.3mf"))
    core = next(version for version in sample_versions() if version.file_name.endswith("_COREONE.gcode"))
    bambu = FakeBambuPrinter(serial="01P00A000000099", host="127.0.0.1", port=1, access_code="x", profile="A1",
                             tick_seconds=1.0, prepare_ticks=1, speed=10_000, clear_plate_seconds=5,
                             files={a1.file_name: build_file(a1).data})
    assert bambu.start_job(a1.file_name)
    for _tick in range(20):
        if bambu.state["gcode_state"] == "FINISH":
            break
        bambu._advance()
    assert bambu.state["gcode_state"] == "FINISH"
    for _tick in range(4):
        bambu._advance()
    assert bambu.state["gcode_state"] == "FINISH"  # the print is still on the plate
    bambu._advance()
    assert bambu.state["gcode_state"] == "IDLE"
    for _tick in range(30):
        bambu._advance()
    assert bambu.state["gcode_state"] == "IDLE" and len(bambu.jobs) == 1  # no job of its own

    prusa = PrusaLinkSimulator(speed=10_000, clear_plate_seconds=5)
    sim_file = prusa.add_print_file(core.file_name, build_file(core).data)
    prusa.start_print(sim_file.sfn)
    prusa.advance(1.0)
    assert prusa.sim.printer_state == "FINISHED"
    prusa.advance(3.0)
    assert prusa.sim.printer_state == "FINISHED"  # the print is still on the plate
    prusa.advance(1.5)
    assert prusa.sim.printer_state == "IDLE"
    prusa.advance(60.0)
    assert prusa.sim.printer_state == "IDLE" and len(prusa.jobs) == 1


def test_serve_stops_every_child_even_when_a_second_signal_arrives_while_it_stops(tmp_path, settings, monkeypatch):
    """A second SIGTERM (make passing one on, a supervisor) during the clean-up must not leave children running."""
    import os
    import signal

    from fablab.management.commands import serve

    monkeypatch.setattr(serve.subprocess, "Popen", lambda command, **kwargs: _Finished())
    stopped = []

    def signal_group(process, signum):
        if not stopped:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the clean-up
        stopped.append(signum)

    def interrupted(signum, frame):  # serve's SIGTERM handler, raising what pytest does not take for a Ctrl-C
        raise RuntimeError("the clean-up was interrupted")

    monkeypatch.setattr(serve, "_signal_group", signal_group)
    monkeypatch.setattr(serve, "_interrupt", interrupted)
    settings.VAR_DIR = tmp_path / "var"
    settings.HOME_ASSISTANT_MQTT_URL = ""
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with pytest.raises(SystemExit):
        call_command("serve", "--with-printers", stdout=io.StringIO(), stderr=io.StringIO())
    children = 3 + 2  # web and the two task clusters, the simulators and the listener
    assert stopped.count(signal.SIGINT) == children and stopped.count(signal.SIGKILL) == children
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
