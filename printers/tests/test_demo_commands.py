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
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, cwd=ROOT, check=True,
                   timeout=120)
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


def test_simulate_printers_without_the_corpus_says_where_to_point_it(settings, tmp_path):
    from django.core.management import CommandError, call_command

    settings.FABLAB_CORPUS = str(tmp_path / "nowhere")
    with pytest.raises(CommandError, match="set FABLAB_CORPUS"):
        call_command("simulate_printers", "--bambu", "1", "--seconds", "1")
