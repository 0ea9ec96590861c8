"""The printers app's settings have one default each, in fablab/settings.py, read from the environment."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from printers import conf
from tests.conftest import ROOT

APP = Path(conf.__file__).parent
READS = re.compile(r"""(?:conf\.value|_setting)\(\s*["']([A-Z0-9_]+)["']\s*([,)])""")


def settings_read_by_the_app() -> dict[str, list[str]]:
    """{setting name: [how each read is written]} for every read through conf.value / _setting."""
    found: dict[str, list[str]] = {}
    for path in APP.rglob("*.py"):
        if "tests" in path.parts:
            continue
        for name, end in READS.findall(path.read_text()):
            found.setdefault(name, []).append(f"{path.relative_to(APP)}: {'no default' if end == ')' else 'default'}")
    return found


def test_every_setting_the_app_reads_is_defined_once_in_settings_py_and_repeated_nowhere():
    found = settings_read_by_the_app()
    assert {"BAMBU_KEEPALIVE_SECONDS", "BAMBU_BACKOFF_MIN_SECONDS", "PRINTER_RECONCILE_SECONDS",
            "PRINTER_FILES_TIMEOUT_SECONDS", "BAMBU_FTPS_PORT"} <= set(found)
    with_default = {name: where for name, where in found.items() if any(w.endswith(": default") for w in where)}
    assert with_default == {}  # a second default would drift from the one in settings.py
    assert not hasattr(conf, "DEFAULTS")
    settings_py = (ROOT / "fablab" / "settings.py").read_text()
    for name in found:
        assert len(re.findall(rf"^{name} = .*env_\w+\(\"{name}\"", settings_py, flags=re.MULTILINE)) == 1, name


def test_a_missing_setting_is_a_clear_error(settings):
    del settings.BAMBU_KEEPALIVE_SECONDS
    with pytest.raises(ImproperlyConfigured, match="BAMBU_KEEPALIVE_SECONDS"):
        conf.value("BAMBU_KEEPALIVE_SECONDS")


def test_tests_and_deployments_change_a_setting_in_one_place(settings, tmp_path):
    settings.PRINTER_RECONCILE_SECONDS = 0.25
    assert conf.value("PRINTER_RECONCILE_SECONDS") == 0.25
    script = ("from printers import conf; print(conf.value('BAMBU_KEEPALIVE_SECONDS'), "
              "conf.value('PRINTER_RECONCILE_SECONDS'), conf.value('BAMBU_BACKOFF_MAX_SECONDS'))")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "FABLAB_VAR_DIR": str(tmp_path / "var"),
           "DJANGO_SETTINGS_MODULE": "fablab.settings", "PATH": "/usr/bin:/bin",
           "BAMBU_KEEPALIVE_SECONDS": "45", "PRINTER_RECONCILE_SECONDS": "9"}
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-v", "0", "-c", script], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["45", "9.0", "30.0"]
