"""N simulated Bambu printers at 1 report/s → Mosquitto → run_printers → database.

    .venv/bin/python bench/printer_fleet.py --printers 100 --seconds 30

Starts a private Mosquitto (plain MQTT, password file), a temporary SQLite database, N fake
printers (X1/A1 profiles alternating, 1 tick/s) and `manage.py run_printers` in its own process.
After a warm-up it starts a job on every printer and measures, per printer, the lag from the
printer's state change to the new state being readable in the database (what the API serves).
Prints reports/s handled by run_printers, p50/p99 of that lag, and run_printers' CPU and memory.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30, help="Measured run time after the warm-up.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    os.environ.update({"DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}", "FABLAB_VAR_DIR": str(work / "var"),
                       "DJANGO_SETTINGS_MODULE": "fablab.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from printers import services
    from printers.choices import Driver, PrinterState
    from printers.models import PrinterLiveState
    from printers.simulators.bambu import BambuFleetSimulator
    from printers.simulators.broker import MosquittoBroker

    call_command("migrate", verbosity=0)
    code = "benchcode"
    fleet = BambuFleetSimulator(count=args.printers, host="127.0.0.1", port=0, access_code=code,
                                tick_seconds=1.0, print_ticks=10_000)
    users = {"bblp": code, **{p.serial: code for p in fleet.printers}}
    broker = MosquittoBroker(work / "broker", users=users).start()
    for p in fleet.printers:
        p.port = broker.port
    ids = {}
    for p in fleet.printers:
        printer = services.printer_create(name=p.serial, driver=Driver.BAMBU, host="127.0.0.1", port=broker.port,
                                          serial=p.serial, secret=code, model=p.profile)
        ids[p.serial] = printer.pk
    # run_printers uses TLS except on BAMBU_PLAIN_MQTT_PORTS; the private broker is plain MQTT on a free port.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BENCH_PLAIN_PORT": str(broker.port)}
    listener = subprocess.Popen(
        [sys.executable, "-c",
         "import os,django;django.setup();from django.conf import settings;"
         "settings.BAMBU_PLAIN_MQTT_PORTS=(int(os.environ['BENCH_PLAIN_PORT']),);"
         "from django.core.management import call_command;call_command('run_printers','--stats-every','0')"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fleet.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            idle = PrinterLiveState.objects.filter(state=PrinterState.IDLE).count()
            if idle == args.printers:
                break
            time.sleep(0.5)
        print(f"warm-up: {idle}/{args.printers} printers idle in the database")
        cpu0, _ = proc_stats(listener.pid)
        t0 = time.monotonic()
        changed_at = {}
        for p in fleet.printers:  # spread the state changes over the run, like a real fleet
            p.start_job()
            changed_at[ids[p.serial]] = time.monotonic()
            time.sleep(min(0.02, args.seconds / 4 / args.printers))
        lags, seen = [], set()
        rss_max = 0.0
        while time.monotonic() - t0 < args.seconds:
            for pk in PrinterLiveState.objects.exclude(state=PrinterState.IDLE).values_list("printer_id", flat=True):
                if pk not in seen:
                    seen.add(pk)
                    lags.append(time.monotonic() - changed_at[pk])
            rss_max = max(rss_max, proc_stats(listener.pid)[1])
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu1, rss = proc_stats(listener.pid)
        reports = sum(p.published for p in fleet.printers)
    finally:
        listener.terminate()
        listener.wait(30)
        fleet.stop()
        broker.stop()
    lags.sort()

    def pct(q):
        return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")

    print(f"printers: {args.printers}, measured {elapsed:.1f} s")
    print(f"reports published by the fleet: {reports} total (~{args.printers} /s offered)")
    print(f"state changes seen in the database: {len(lags)}/{args.printers}")
    worst = lags[-1] if lags else 0
    print(f"lag printer change -> database: p50 {pct(0.5):.3f} s, p99 {pct(0.99):.3f} s, max {worst:.3f} s")
    cpu_percent = (cpu1 - cpu0) / elapsed * 100
    print(f"run_printers CPU: {cpu_percent:.0f} % of one core; RSS {rss:.0f} MiB (max {rss_max:.0f})")


if __name__ == "__main__":
    main()
