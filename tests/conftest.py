import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def manage(tmp_path):
    """Run manage.py in a fresh process with a given environment (settings are read at start)."""

    def run(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "AWS_"))}
        base.update({
            "DATABASE_URL": f"sqlite:///{tmp_path / 'sub.sqlite3'}",
            "FABLAB_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "fablab.settings",
        })
        base.update(env or {})
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args], env=base, cwd=ROOT,
            capture_output=True, text=True, timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run
