import signal
import subprocess
import sys
import time

import pytest

from printers.choices import Driver
from printers.demo import load_demo_printers
from printers.models import Printer
from tests.conftest import ROOT


@pytest.mark.django_db
def test_demo_printers_are_created_once():
    first = load_demo_printers()
    second = load_demo_printers()
    assert [p.pk for p in first] == [p.pk for p in second]
    assert Printer.objects.filter(driver=Driver.BAMBU).count() == 2
    assert all(p.has_credentials for p in second)


def test_run_printers_stops_cleanly_on_sigterm(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "FABLAB_VAR_DIR": str(tmp_path / "var"),
           "DJANGO_SETTINGS_MODULE": "fablab.settings", "PATH": "/usr/bin:/bin"}
    # Migrating a fresh database is only the set-up; it may take a while on a busy machine.
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, cwd=ROOT, check=True,
                   timeout=600)
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_printers"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening" in process.stdout.readline()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped" in output


def test_simulate_printers_needs_no_corpus(settings, tmp_path):
    """A user's clone has no test corpus: the simulated printers report from the project's own payload model."""
    import io
    import socket

    from django.core.management import call_command

    settings.FABLAB_CORPUS = str(tmp_path / "nowhere")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = io.StringIO()
    call_command("simulate_printers", "--bambu", "3", "--profiles", "X1C,P1S,A1", "--prusa", "1",
                 "--prusa-port", str(port), "--port", "1", "--seconds", "1", "--tick", "0.2", stdout=out)
    printed = out.getvalue()
    assert "bambu X1C serial=00MSIM" in printed and "bambu P1S serial=01PSIM" in printed
    assert "bambu A1 serial=039SIM" in printed and f"prusalink COREONE port={port}" in printed
    assert "files=1" in printed and printed.rstrip().endswith("simulate_printers: stopped.")


@pytest.mark.parametrize(("options", "message"), [
    (["--profiles", "H2D"], "Unknown Bambu model"),
    (["--prusa-model", "XL"], "Unknown PrusaLink model"),
    (["--fail-at-layer", "2", "--cancel-at-layer", "3"], "one of --fail-at-layer"),
    (["--files", "/nonexistent/folder"], "no such folder"),
])
def test_simulate_printers_refuses_bad_options_with_a_message(options, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("simulate_printers", "--bambu", "1", "--seconds", "1", *options)
