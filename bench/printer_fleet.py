"""N simulated Bambu printers at 1 report/s → Mosquitto → run_printers → database.

    .venv/bin/python bench/printer_fleet.py --printers 500 --seconds 30

Starts a private Mosquitto (plain MQTT, password file), a temporary SQLite database (or
--database-url), the Printer rows, `manage.py run_printers` in its own process (--listeners: one
per shard) and N fake printers (X1/A1 profiles alternating: X1 pushes its full state every
second, A1 deltas) in --sim-processes processes of their own. The listener runs the same code as
with TLS; only the port is declared plain. With --tls the listener connects over TLS as to real
printers, each connection checking that the broker's certificate names its printer's serial.

After the warm-up (every printer idle in the database) it starts one job on every printer, spread
over the first third of the run; each job goes PREPARE → RUNNING → FINISH within the run. For
every state change it measures the lag from the fake printer publishing the first report with the
new state to the matching transition being committed in the database (what the API serves), and
it checks that nothing was lost: each printer must show exactly idle → preparing → printing →
finished, and exactly one completed PrinterJob with the printer's own task id.

Prints the warm-up time, reports/s handled by run_printers, p50/p99/max lag, lost or duplicated
transitions, and the CPU and memory of run_printers (and, for reference, of the simulators and
the broker).
"""

import argparse
import ast
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _setup

ROOT = _setup.ROOT
PROFILES = ("X1", "A1")
STATE_OF = {"PREPARE": "preparing", "RUNNING": "printing", "FINISH": "finished"}
EXPECTED_PATH = [("idle", "preparing"), ("preparing", "printing"), ("printing", "finished")]


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
    return cpu, rss


def simulator_worker(connection, first: int, count: int, port: int, code: str, print_ticks: int) -> None:
    """One process of fake printers; obeys "start_jobs", "report" and "stop" from the benchmark."""
    _setup.setup_django()
    from printers.simulators.bambu import BambuFleetSimulator

    fleet = BambuFleetSimulator(count=count, host="127.0.0.1", port=port, access_code=code, profiles=PROFILES,
                                first_index=first + 1, tick_seconds=1.0, prepare_ticks=3,
                                print_ticks=print_ticks).start()
    connection.send(("started", os.getpid()))
    try:
        while True:
            command, argument = connection.recv()
            if command == "start_jobs":
                starts, spread = argument, []
                for printer in fleet.printers:
                    delay = starts[printer.serial] - time.time()
                    if delay > 0:
                        time.sleep(delay)
                    printer.start_job()
                    spread.append(printer.serial)
                connection.send(("jobs_started", len(spread)))
            elif command == "report":
                connection.send(("report", {p.serial: {"published": p.published, "changes": list(p.changes),
                                                       "task_id": p.state.get("task_id")}
                                            for p in fleet.printers}))
            elif command == "stop":
                break
    finally:
        fleet.stop()
        connection.send(("stopped", None))


class StatsReader(threading.Thread):
    """Keeps the last counters line of run_printers' output."""

    LINE = re.compile(r"run_printers: (\d+) printers, (\d+) connected, (\{.*\})")

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.latest = (0, 0, {})

    def run(self) -> None:
        for line in self.stream:
            match = self.LINE.search(line)
            if match:
                self.latest = (int(match[1]), int(match[2]), ast.literal_eval(match[3]))


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30, help="Measured run time after the warm-up (>= 20).")
    parser.add_argument("--sim-processes", type=int, default=0,
                        help="Processes for the fake printers (0: one per 250 printers).")
    parser.add_argument("--warmup-timeout", type=float, default=120)
    parser.add_argument("--listeners", type=int, default=1,
                        help="run_printers processes, each serving its shard of the printers (--shard i/N).")
    parser.add_argument("--database-url", default="",
                        help="An empty database to use, e.g. postgres://postgres@127.0.0.1:5432/fleet_bench "
                             "(default: a temporary SQLite file).")
    parser.add_argument("--tls", action="store_true",
                        help="run_printers connects over TLS, as to real Bambu printers (a certificate naming every "
                             "serial; the fake printers publish on a second, plain listener).")
    args = parser.parse_args()
    if args.seconds < 20:
        parser.error("--seconds must be at least 20 so that every job can finish within the run.")

    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    database_url = args.database_url or f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ.update({"DATABASE_URL": database_url, "FABLAB_VAR_DIR": str(work / "var"),
                       "DJANGO_SETTINGS_MODULE": "fablab.settings", "LOG_LEVEL": "WARNING"})
    _setup.setup_django()
    from django.conf import settings
    from django.core.management import call_command

    settings.DEBUG = False

    from printers import services
    from printers.choices import Driver, JobOutcome, PrinterState
    from printers.models import PrinterJob, PrinterLiveState, StateTransition
    from printers.simulators.bambu import fake_serial
    from printers.simulators.broker import MosquittoBroker

    call_command("migrate", verbosity=0)
    code = "benchcode"
    serials = [fake_serial(PROFILES[i % len(PROFILES)], i + 1) for i in range(args.printers)]
    from printers.simulators.broker import free_port

    broker = MosquittoBroker(work / "broker", users={"bblp": code, **{s: code for s in serials}},
                             tls_names=serials if args.tls else None,
                             plain_port=free_port() if args.tls else None).start()
    simulator_port = broker.plain_port or broker.port
    ids = {}
    for index, serial in enumerate(serials):
        printer = services.printer_create(name=serial, driver=Driver.BAMBU, host="127.0.0.1", port=broker.port,
                                          serial=serial, secret=code, model=PROFILES[index % len(PROFILES)])
        ids[serial] = printer.pk

    # run_printers uses TLS except on BAMBU_PLAIN_MQTT_PORTS; the private broker is plain MQTT on a free port
    # (with --tls: TLS for run_printers, checked against each serial as with real printers).
    # DEBUG off as in production: Django would otherwise keep a log of every query.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BENCH_PLAIN_PORT": "0" if args.tls else str(broker.port)}
    listeners, readers = [], []
    for index in range(args.listeners):
        listeners.append(subprocess.Popen(
            [sys.executable, "-c",
             "import os,django;django.setup();from django.conf import settings;"
             "settings.BAMBU_PLAIN_MQTT_PORTS=(int(os.environ['BENCH_PLAIN_PORT']),);settings.DEBUG=False;"
             "from django.core.management import call_command;"
             f"call_command('run_printers','--stats-every','1','--shard','{index}/{args.listeners}')"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        readers.append(StatsReader(listeners[-1].stdout))
        readers[-1].start()

    def totals() -> tuple[int, float, float]:
        """(connected, reports handled, busiest database thread's busy seconds) over all listeners."""
        return (sum(r.latest[1] for r in readers), sum(r.latest[2].get("reports", 0) for r in readers),
                max(r.latest[2].get("busy_seconds", 0) for r in readers))

    def listener_stats() -> tuple[float, float]:
        """(CPU seconds, RSS MiB) of all listeners together."""
        both = [proc_stats(p.pid) for p in listeners]
        return sum(c for c, _ in both), sum(r for _, r in both)

    processes = args.sim_processes or max(1, round(args.printers / 250))
    print_ticks = max(5, int(args.seconds / 3))
    context = multiprocessing.get_context("spawn")
    workers = []
    chunk = -(-args.printers // processes)
    chunk += chunk % 2  # even slices keep the X1/A1 alternation of the serials
    for first in range(0, args.printers, chunk):
        ours, theirs = context.Pipe()
        process = context.Process(target=simulator_worker, daemon=True,
                                  args=(theirs, first, min(chunk, args.printers - first), simulator_port, code,
                                        print_ticks))
        process.start()
        workers.append((process, ours))
    for _process, pipe in workers:
        pipe.recv()
    started = time.monotonic()
    lags, seen, lost, duplicated, bad_jobs = [], {}, [], [], []
    try:
        idle = 0
        while time.monotonic() - started < args.warmup_timeout:
            idle = PrinterLiveState.objects.filter(state=PrinterState.IDLE).count()
            if idle == args.printers:
                break
            time.sleep(0.5)
        warmup = time.monotonic() - started
        print(f"warm-up: {idle}/{args.printers} printers idle in the database after {warmup:.1f} s "
              f"({totals()[0]} connected)")
        mark = StateTransition.objects.order_by("-id").values_list("id", flat=True).first() or 0
        cpu0, _ = listener_stats()
        sim_cpu0 = sum(proc_stats(p.pid)[0] for p, _pipe in workers)
        broker_cpu0, _ = proc_stats(broker.process.pid)
        _connected, reports0, busy0 = totals()
        t0 = time.monotonic()
        wall0 = time.time() + 0.5
        spread = args.seconds / 3
        starts = {serial: wall0 + spread * i / args.printers for i, serial in enumerate(serials)}
        for _process, pipe in workers:
            pipe.send(("start_jobs", starts))
        rss_max, last_id = 0.0, mark

        def watch() -> int:
            """Note when each new transition became visible; returns how many were new."""
            nonlocal last_id
            rows = list(StateTransition.objects.filter(id__gt=last_id).order_by("id")
                        .values_list("id", "printer_id", "to_state"))
            now = time.time()
            for row_id, printer_id, to_state in rows:
                seen.setdefault((printer_id, to_state), now)
                last_id = row_id
            return len(rows)

        while time.monotonic() - t0 < args.seconds:
            watch()
            rss_max = max(rss_max, listener_stats()[1])
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu1, rss = listener_stats()
        sim_cpu1 = sum(proc_stats(p.pid)[0] for p, _pipe in workers)
        broker_cpu1, _ = proc_stats(broker.process.pid)
        connected, reports1, busy1 = totals()
        in_window = len(seen)
        quiet_since = time.monotonic()  # late transitions are late, not lost: wait until none come for 10 s
        while time.monotonic() - quiet_since < 10 and time.monotonic() - t0 < 4 * args.seconds:
            if watch():
                quiet_since = time.monotonic()
            time.sleep(0.05)
        reports = {}
        for _process, pipe in workers:
            pipe.recv()  # jobs_started
            pipe.send(("report", None))
            reports.update(pipe.recv()[1])

        paths = {}
        for printer_id, from_state, to_state in StateTransition.objects.filter(id__gt=mark).order_by("id") \
                .values_list("printer_id", "from_state", "to_state"):
            paths.setdefault(printer_id, []).append((from_state, to_state))
        jobs = {}
        for printer_id, external_id, outcome in PrinterJob.objects.values_list("printer_id", "external_job_id",
                                                                                "outcome"):
            jobs.setdefault(printer_id, []).append((external_id, outcome))
        for serial, pk in ids.items():
            report = reports[serial]
            for gcode_state, published_at in report["changes"]:
                to_state = STATE_OF.get(gcode_state)
                if to_state and published_at >= wall0 - 1 and (pk, to_state) in seen:
                    lags.append(max(0.0, seen[(pk, to_state)] - published_at))
            path = paths.get(pk, [])
            for step in EXPECTED_PATH:
                if path.count(step) == 0:
                    lost.append((serial, step))
                elif path.count(step) > 1:
                    duplicated.append((serial, step))
            if jobs.get(pk) != [(report["task_id"], JobOutcome.COMPLETED)]:
                bad_jobs.append((serial, jobs.get(pk)))
        published = sum(r["published"] for r in reports.values())
    finally:
        for listener in listeners:
            listener.terminate()
        for listener in listeners:
            listener.wait(60)
        for _process, pipe in workers:
            try:
                pipe.send(("stop", None))
            except OSError:
                pass
        for process, _pipe in workers:
            process.join(30)
        broker.stop()
    lags.sort()
    print(f"printers: {args.printers} in {len(workers)} simulator process(es){' over TLS' if args.tls else ''}, "
          f"measured {elapsed:.1f} s, "
          f"{connected} connected at the end")
    print(f"reports published by the fleet: {published} in all (~{args.printers}/s offered); "
          f"run_printers handled {(reports1 - reports0) / elapsed:.0f} reports/s")
    print(f"state changes committed: {len(lags)}/{len(EXPECTED_PATH) * args.printers} "
          f"({in_window} within the measured time)")
    print(f"lag report published -> transition committed: p50 {percentile(lags, 0.5):.3f} s, "
          f"p99 {percentile(lags, 0.99):.3f} s, max {lags[-1] if lags else float('nan'):.3f} s")
    print(f"lost transitions: {len(lost)}, duplicated: {len(duplicated)}, printers without exactly one "
          f"completed job with their task id: {len(bad_jobs)}")
    for serial, detail in (lost + duplicated + bad_jobs)[:5]:
        print(f"  e.g. {serial} printer {ids[serial]}: {detail} (path {paths.get(ids[serial])})")
    cpu_percent = (cpu1 - cpu0) / elapsed * 100
    print(f"run_printers ({args.listeners} process(es)) CPU: {cpu_percent:.0f} % of one core; RSS {rss:.0f} MiB "
          f"(max {rss_max:.0f}); the busiest database thread busy {(busy1 - busy0) / elapsed * 100:.0f} % of the time")
    print(f"for reference: simulators {(sim_cpu1 - sim_cpu0) / elapsed * 100:.0f} % of one core, "
          f"Mosquitto {(broker_cpu1 - broker_cpu0) / elapsed * 100:.0f} %")


if __name__ == "__main__":
    main()
