"""A fake PrusaLink (Buddy firmware) printer: a threaded HTTP server on loopback (printers.md §4.2).

Behaves like the firmware where the app depends on it: Digest auth (realm "Printer API",
user "maker", no qop, 16-hex nonces valid 300 s, `stale=true` for an expired nonce with a
correct digest), optional X-Api-Key, 401 for every /api, /usb, /thumb path without auth,
204 on /api/v1/job without a job, 409 for pause/resume/stop in the wrong state, 404 for a
stale job id, 400 for a non-numeric one, job ids increasing per job, FINISHED/STOPPED sticky
until `acknowledge()` (the plate is cleared), ATTENTION (job shows PAUSED), ERROR, BUSY, SFN/LFN
file pairs with ETag/304 and downloads under /usb/<SFN>. Its `/api/version`, `/api/v1/info`,
`/api/v1/status` and `/api/v1/job` bodies come from the project's payload model (`payloads`) of its
model (`model="COREONE"` or `"MK4"`). Uploads: PUT /api/v1/files/usb/<name> stores the body under a
generated short name (201; 409 when the file exists without `Overwrite: ?1`, 411 without
Content-Length; `Print-After-Upload: ?1` starts it), recorded in `uploads`; POST
/api/v1/files/usb/<path> starts a file named by its short or its long name.

A job prints its file the way the firmware runs it (`printfile`): for the file's sliced time divided by
`speed`, with `progress` and `time_remaining` from its `M73` lines (`layer` counts its layer changes; the
API has no layer, tests read `layer`). A file added with `print_seconds` prints that long, evenly.
`fail_at_layer(k)` / `cancel_at_layer(k)`: the job (running, or else the next) reaches layer k, then
goes ERROR / STOPPED. With `auto_jobs`, `advance()` also plays the operator: it starts the print
files on the USB stick one after the other, clearing the plate `job_gap_seconds` after each end.

Time is the simulator's own clock: `advance(seconds)` moves prints forward and ages nonces,
so tests never sleep. Faults: `fault = "slow" | "reset" | "503" | None`, `power_off()` (connection
refused) and `power_on()`, `vanish_during_download(sfn)` (half the file, then a reset). Tests
control it through this Python handle only; there is no control endpoint a production client
could reach.

    with PrusaLinkSimulator(password="secret") as sim:
        sim.add_file("BENCHY~1.BGC", "benchy 0.4n.bgcode", b"...")
        sim.start_print("BENCHY~1.BGC")
        sim.advance(300)
"""

import hashlib
import json
import logging
import random
import re
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from printers.simulators import payloads
from printers.simulators.printfile import PrintFileError, PrintPlan, PrintRun, read_print_file
from printers.simulators.storage import PRUSA_FORMATS, builtin_print_file

logger = logging.getLogger(__name__)

REALM = "Printer API"
USERNAME = "maker"
NONCE_VALID_SECONDS = 300
ROOM_C = 23.5
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d49444154789c6360000002000100"
    "05fe02fea73581e40000000049454e44ae426082"
)


def _md5(value: str) -> str:
    return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()


@dataclass
class SimFile:
    sfn: str
    lfn: str
    content: bytes
    print_seconds: int | None = None  # set: prints that long, evenly; None: as its content says
    m_timestamp: int = 1706802615
    read_only: bool = False

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.content, usedforsecurity=False).hexdigest()[:16] + '"'

    def refs(self) -> dict:
        return {"icon": f"/thumb/s/usb/{self.sfn}", "thumbnail": f"/thumb/l/usb/{self.sfn}",
                "download": f"/usb/{self.sfn}"}

    def plan(self) -> PrintPlan:
        """What printing it takes; PrintFileError when the content is not a print file."""
        if self.print_seconds is not None:
            return PrintPlan.uniform(self.print_seconds)
        return read_print_file(self.lfn, self.content)


@dataclass
class SimJob:
    id: int
    file: SimFile
    run: PrintRun
    state: str = "PRINTING"  # PRINTING, PAUSED, FINISHED, STOPPED, ERROR
    time_printing: float = 0.0  # seconds it has been printing (the printer's clock)
    speed: float = 1.0
    error: str = ""  # why it went ERROR by itself (an unreadable file)

    @property
    def progress(self) -> float:
        return round(self.run.progress().percent, 2)

    @property
    def time_remaining(self) -> int:
        return int(self.run.progress().remaining_seconds / self.speed)

    @property
    def layer(self) -> int:
        return self.run.progress().layer


@dataclass
class _Nonce:
    issued_at: float


@dataclass
class SimState:
    printer_state: str = "IDLE"
    job: SimJob | None = None
    next_job_id: int = 100
    files: dict[str, SimFile] = field(default_factory=dict)  # by short-name path: X~1.BGC, PARTS~1/X~1.BGC
    folders: dict[str, str] = field(default_factory=dict)  # short-name path -> long name
    temp_nozzle: float = 24.0
    temp_bed: float = ROOM_C


class PrusaLinkSimulator:
    def __init__(self, *, password: str = "sim-password", api_key_enabled: bool = True, port: int = 0,
                 slow_seconds: float = 1.0, model: str = "COREONE", serial: str = "SIM-0000000001",
                 speed: float = 1.0, auto_jobs: bool = False, job_gap_seconds: float = 40.0,
                 clear_plate_seconds: float = 0.0):
        """`clear_plate_seconds` (without `auto_jobs`): the operator acknowledges the end of a job this long
        after it, and the printer waits idle for the next upload (0: until `acknowledge()`)."""
        if speed <= 0:
            raise ValueError("speed must be positive.")
        self.model = payloads.prusa_model(model)
        self.serial = serial
        self.password = password
        self.api_key_enabled = api_key_enabled
        self.slow_seconds = slow_seconds
        self.speed = float(speed)
        self.auto_jobs = auto_jobs
        self.job_gap_seconds = job_gap_seconds
        self.clear_plate_seconds = float(clear_plate_seconds or 0.0)
        self.fault: str | None = None
        self.clock = 0.0
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) for assertions
        self.uploads: list[str] = []  # long names of the files received (PUT), in order
        self.jobs: list[tuple[str, str]] = []  # (long name, end state) of every job that ended
        self.vanishing: set[str] = set()
        self.sim = SimState()
        self._planned: tuple[str, int] | None = None  # (outcome, layer) for the next job
        self._waited = 0.0  # autoplay: seconds idle, or since the job ended
        self._first_job_seconds = random.uniform(2.0, 8.0)
        self._auto_index = random.randrange(1 << 16)
        self._nonces: dict[str, _Nonce] = {}
        self._lock = threading.RLock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> "PrusaLinkSimulator":
        handler = type("Handler", (_Handler,), {"simulator": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    power_off = stop  # connection refused until power_on()

    def power_on(self) -> None:
        if self._server is None:
            self.start()

    def __enter__(self) -> "PrusaLinkSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test controls -------------------------------------------------------------------

    def add_file(self, sfn: str, lfn: str, content: bytes = b"GCDE\x01\x00", *, print_seconds: int | None = None,
                 read_only: bool = False) -> SimFile:
        """A file on the USB stick: printed as its content says, or for `print_seconds` when given."""
        with self._lock:
            sim_file = SimFile(sfn=sfn, lfn=lfn, content=content, print_seconds=print_seconds, read_only=read_only)
            self.sim.files[sfn] = sim_file
            return sim_file

    def add_print_file(self, lfn: str, content: bytes) -> SimFile:
        """Put a file on the USB stick's root under a generated short name (as a PUT upload does)."""
        with self._lock:
            existing = self.find_file(lfn)
            return self.add_file(existing.sfn if existing else self.short_name("", lfn), lfn, content)

    def add_folder(self, sfn: str, lfn: str) -> None:
        """A folder on the USB stick (`sfn`: its short-name path, e.g. PARTS~1 or PARTS~1/GEARS~1)."""
        with self._lock:
            self.sim.folders[sfn.strip("/")] = lfn

    def find_file(self, path: str) -> SimFile | None:
        """The file at `path` inside the storage, named by its short-name path or its folder's and its long name."""
        with self._lock:
            path = path.strip("/")
            if path in self.sim.files:
                return self.sim.files[path]
            folder, _slash, name = path.rpartition("/")
            return next((f for f in self.sim.files.values() if f.sfn.rpartition("/")[0] == folder and f.lfn == name),
                        None)

    def short_name(self, folder: str, lfn: str) -> str:
        """A FAT 8.3 name for a new file, e.g. CUBE04~1.BGC for "cube 0.4n.bgcode"."""
        stem, _dot, suffix = lfn.rpartition(".") if "." in lfn else (lfn, "", "")
        base = "".join(ch for ch in stem.upper() if ch.isalnum())[:6] or "FILE"
        extension = "".join(ch for ch in suffix.upper() if ch.isalnum())[:3]
        for number in range(1, 100):
            name = f"{base}~{number}" + (f".{extension}" if extension else "")
            path = f"{folder}/{name}" if folder else name
            if path not in self.sim.files:
                return path
        raise RuntimeError("no free short name")

    def remove_file(self, sfn: str) -> None:
        with self._lock:
            self.sim.files.pop(sfn, None)

    def vanish_during_download(self, sfn: str) -> None:
        """The next download of `sfn` announces the whole file, sends half, then the file is gone."""
        with self._lock:
            self.vanishing.add(sfn)

    def start_print(self, sfn: str) -> SimJob:
        with self._lock:
            if self.sim.printer_state not in ("IDLE", "READY"):
                raise RuntimeError(f"cannot start a print while {self.sim.printer_state}")
            sim_file = self.sim.files[sfn]
            error = ""
            try:
                plan = sim_file.plan()
            except PrintFileError as exc:  # the firmware finds out on its first line and stops with an error
                error, plan = str(exc), PrintPlan.uniform(1)
                logger.info("PrusaLink simulator cannot print %s: %s", sim_file.lfn, exc)
            run = PrintRun(plan)
            planned, self._planned = self._planned, None
            if planned:
                run.stop_at(planned[1], planned[0])
            job = SimJob(id=self.sim.next_job_id, file=sim_file, run=run, speed=self.speed, error=error)
            self.sim.next_job_id += 1
            self.sim.job = job
            self.sim.printer_state = "PRINTING"
            self._waited = 0.0
            if not error:
                self.sim.temp_nozzle, self.sim.temp_bed = self._targets()
            return job

    def fail_at_layer(self, layer: int) -> None:
        """The job printing (or else the next) reaches layer `layer`, then the printer stops with ERROR."""
        self._stop_at(layer, "failed")

    def cancel_at_layer(self, layer: int) -> None:
        """The job printing (or else the next) reaches layer `layer`, then is stopped (STOPPED)."""
        self._stop_at(layer, "cancelled")

    def _stop_at(self, layer: int, outcome: str) -> None:
        if int(layer) < 1:
            raise ValueError("the layer to stop at counts from 1")
        with self._lock:
            job = self.sim.job
            if job is not None and job.state in ("PRINTING", "PAUSED"):
                job.run.stop_at(int(layer), outcome)
            else:
                self._planned = (outcome, int(layer))

    @property
    def layer(self) -> int:
        """The layer the job is printing (0 without a job); the PrusaLink API does not report it."""
        with self._lock:
            return self.sim.job.layer if self.sim.job else 0

    def _targets(self) -> tuple[float, float]:
        plan = self.sim.job.run.plan if self.sim.job else None
        return float((plan and plan.nozzle_c) or 215.0), float((plan and plan.bed_c) or 60.0)

    def advance(self, seconds: float) -> None:
        """Move the clock: printing jobs progress and end as their file says; with `auto_jobs` the
        operator clears the plate and starts the next file."""
        with self._lock:
            self.clock += seconds
            job = self.sim.job
            if job and job.state == "PRINTING" and self.sim.printer_state == "PRINTING":
                if job.error:
                    self._end(job, "ERROR")
                else:
                    outcome = job.run.advance(seconds * self.speed)
                    job.time_printing = min(job.time_printing + seconds, job.run.plan.total_seconds / self.speed)
                    if outcome:
                        self._end(job, {"finished": "FINISHED", "failed": "ERROR", "cancelled": "STOPPED"}[outcome])
            if self.auto_jobs:
                self._autoplay(seconds)
            elif self.clear_plate_seconds:
                self._waited += seconds
                if self.sim.printer_state in ("FINISHED", "STOPPED", "ERROR") \
                        and self._waited >= self.clear_plate_seconds:
                    self.acknowledge()

    def _end(self, job: SimJob, state: str) -> None:
        job.state = self.sim.printer_state = state
        self.sim.temp_nozzle, self.sim.temp_bed = 40.0, 35.0
        self.jobs.append((job.file.lfn, state))
        self._waited = 0.0

    def _autoplay(self, seconds: float) -> None:
        state = self.sim.printer_state
        self._waited += seconds
        if state in ("FINISHED", "STOPPED", "ERROR") and self._waited >= self.job_gap_seconds:
            self.acknowledge()
            self._waited = max(0.0, self._first_job_seconds - 3.0)
        elif state in ("IDLE", "READY") and self._waited >= self._first_job_seconds:
            names = self.print_files()
            if not names:
                lfn, data = builtin_print_file("gcode")
                names = [self.add_print_file(lfn, data).sfn]
            self._auto_index += 1
            self.start_print(names[self._auto_index % len(names)])

    def print_files(self) -> list[str]:
        """Short names of the print files on the USB stick's root, in order."""
        with self._lock:
            return sorted(f.sfn for f in self.sim.files.values()
                          if "/" not in f.sfn and f.lfn.lower().endswith(PRUSA_FORMATS) and not f.read_only)

    def acknowledge(self, *, ready: bool = False) -> None:
        """The operator confirms the end of the job on the printer's screen (and clears the plate)."""
        with self._lock:
            if self.sim.printer_state in ("FINISHED", "STOPPED", "ERROR"):
                self.sim.job = None
                self.sim.printer_state = "READY" if ready else "IDLE"
                self.sim.temp_nozzle, self.sim.temp_bed = 24.0, ROOM_C

    clear_plate = acknowledge

    def attention(self) -> None:
        with self._lock:
            if self.sim.job and self.sim.printer_state == "PRINTING":
                self.sim.printer_state = "ATTENTION"
                self.sim.job.state = "PAUSED"

    def resolve_attention(self) -> None:
        with self._lock:
            if self.sim.printer_state == "ATTENTION":
                self.sim.printer_state = self.sim.job.state = "PRINTING"

    def error(self) -> None:
        with self._lock:
            self.sim.printer_state = "ERROR"
            if self.sim.job:
                self.sim.job.state = "ERROR"

    def set_busy(self, busy: bool = True) -> None:
        with self._lock:
            self.sim.printer_state = "BUSY" if busy else "IDLE"

    # --- auth ----------------------------------------------------------------------------

    def new_nonce(self) -> str:
        nonce = secrets.token_hex(8)  # 16 hex characters, like the firmware
        self._nonces[nonce] = _Nonce(issued_at=self.clock)
        return nonce

    def check_auth(self, method: str, headers) -> tuple[bool, str]:
        """(authorised, WWW-Authenticate header to send when not)."""
        api_key = headers.get("X-Api-Key")
        if api_key is not None and self.api_key_enabled:
            if secrets.compare_digest(api_key, self.password):
                return True, ""
            return False, f'ApiKey realm="{REALM}"'
        authorization = headers.get("Authorization", "")
        stale = False
        if authorization.startswith("Digest "):
            fields = dict(re.findall(r'(\w+)="?([^",]*)"?', authorization[7:]))
            nonce = fields.get("nonce", "")
            expected = _md5(
                f"{_md5(f'{USERNAME}:{REALM}:{self.password}')}:{nonce}:{_md5(method + ':' + fields.get('uri', ''))}"
            )
            digest_ok = (fields.get("username") == USERNAME and fields.get("realm") == REALM
                         and secrets.compare_digest(fields.get("response", ""), expected))
            issued = self._nonces.get(nonce)
            if digest_ok and issued is not None:
                if self.clock - issued.issued_at <= NONCE_VALID_SECONDS:
                    return True, ""
                stale = True
        return False, (f'Digest realm="{REALM}", nonce="{self.new_nonce()}", '
                       f'stale={"true" if stale else "false"}')


class _Handler(BaseHTTPRequestHandler):
    simulator: PrusaLinkSimulator
    protocol_version = "HTTP/1.1"
    server_version = "PrusaLink-Simulator"

    def log_message(self, format, *args):  # quiet
        pass

    # --- helpers ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", *, content_type: str = "application/json",
              headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if body and status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)
        self.simulator.requests.append((self.command, self.path, status))

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode())

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _dispatch(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout during a "slow" fault)

    def _handle(self) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        if sim.fault == "reset":
            return self._reset()
        if sim.fault == "slow":
            time.sleep(sim.slow_seconds)
        if sim.fault == "503":
            return self._json(503, {"title": "Service Unavailable"})
        path = unquote(self.path.split("?", 1)[0])
        with sim._lock:
            if path.startswith(("/api/", "/usb/", "/thumb/")):
                authorised, challenge = sim.check_auth(self.command, self.headers)
                if not authorised:
                    return self._send(401, b"401: Unauthorized", content_type="text/plain",
                                      headers={"WWW-Authenticate": challenge})
            return self._route(path)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

    # --- routes ------------------------------------------------------------------------------

    def _route(self, path: str) -> None:
        sim = self.simulator.sim
        method = self.command
        if path == "/api/version" and method == "GET":
            return self._json(200, payloads.prusa_version(self.simulator.model))
        if path == "/api/v1/info" and method == "GET":
            return self._json(200, payloads.prusa_info(self.simulator.model, self.simulator.serial))
        if path == "/api/v1/status" and method == "GET":
            return self._json(200, self._status())
        if path == "/api/v1/storage" and method == "GET":
            return self._json(200, {"storage_list": [{"path": "/usb/", "name": "usb", "type": "USB",
                                                      "read_only": False, "available": True}]})
        if path == "/api/v1/job" and method == "GET":
            return self._json(200, self._job()) if sim.job else self._send(204)
        match = re.fullmatch(r"/api/v1/job/([^/]+)(?:/(pause|resume))?", path)
        if match:
            return self._job_command(match.group(1), match.group(2))
        match = re.fullmatch(r"/api/v1/files/usb(?:/(.*))?", path)
        if match and (match.group(1) or "").strip("/") in ("", *sim.folders) and method == "GET":
            return self._folder((match.group(1) or "").strip("/"))
        if match:
            return self._file(match.group(1))
        match = re.fullmatch(r"/usb/(.+)", path)
        if match and method == "GET":
            sim_file = sim.files.get(match.group(1))
            if sim_file is None:
                return self._json(404, {"title": "Not Found"})
            if sim_file.sfn in self.simulator.vanishing:
                return self._vanish(sim_file)
            return self._send(200, sim_file.content, content_type="application/octet-stream",
                              headers={"Content-Disposition": f'attachment; filename="{sim_file.sfn}"'})
        if re.fullmatch(r"/thumb/[sl]/usb/.+", path) and method == "GET":
            return self._send(200, PNG_1PX, content_type="image/png")
        return self._json(404, {"title": "Not Found"})

    def _folder(self, folder: str) -> None:
        sim = self.simulator.sim

        def inside(sfn: str) -> bool:
            return sfn.rpartition("/")[0] == folder

        children = [{"name": name.rpartition("/")[2], "ro": False, "type": "FOLDER", "m_timestamp": 1706802615,
                     "display_name": long_name} for name, long_name in sim.folders.items() if inside(name)]
        children += [{"name": f.sfn.rpartition("/")[2], "ro": f.read_only, "type": "PRINT_FILE",
                      "m_timestamp": f.m_timestamp, "display_name": f.lfn,
                      "refs": f.refs() if not f.read_only else {"icon": f.refs()["icon"]}}
                     for f in sim.files.values() if inside(f.sfn)]
        return self._json(200, {"type": "FOLDER", "ro": False, "name": folder.rpartition("/")[2] or "usb",
                                "children": children})

    def _vanish(self, sim_file: SimFile) -> None:
        self.simulator.vanishing.discard(sim_file.sfn)
        self.simulator.sim.files.pop(sim_file.sfn, None)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(sim_file.content)))
        self.end_headers()
        self.wfile.write(sim_file.content[: len(sim_file.content) // 2])
        self.wfile.flush()
        self.simulator.requests.append((self.command, self.path, 200))
        self._reset()

    def _status(self) -> dict:
        simulator, sim = self.simulator, self.simulator.sim
        job = sim.job
        heating = job is not None and job.state in ("PRINTING", "PAUSED") and not job.error
        nozzle_target, bed_target = simulator._targets() if heating else (0.0, 0.0)
        job_body = None
        if job:
            job_body = {"id": job.id, "progress": job.progress, "time_printing": int(job.time_printing)}
            if job.state in ("FINISHED", "STOPPED"):
                job_body["time_remaining"] = 0
            elif job.time_printing > 0 or job.run.plan.marks:  # known once printing, or from the file's M73
                job_body["time_remaining"] = job.time_remaining
        return payloads.prusa_status(state=sim.printer_state, temp_nozzle=sim.temp_nozzle, target_nozzle=nozzle_target,
                                     temp_bed=sim.temp_bed, target_bed=bed_target,
                                     axis_z=round(0.2 * job.layer, 1) if heating and job.layer else 5.0,
                                     job=job_body, fan_print=3600 if heating and job.layer > 1 else 0,
                                     fan_hotend=5200 if heating else 0)

    def _job(self) -> dict:
        job = self.simulator.sim.job
        remaining = None
        if job.state in ("FINISHED", "STOPPED"):
            remaining = 0
        elif job.time_printing > 0 or job.run.plan.marks:
            remaining = job.time_remaining
        return payloads.prusa_job(
            job_id=job.id, state=job.state, progress=job.progress, time_printing=int(job.time_printing),
            time_remaining=remaining,
            file={"refs": job.file.refs(), "name": job.file.sfn, "display_name": job.file.lfn, "path": "/usb",
                  "size": len(job.file.content), "m_timestamp": job.file.m_timestamp})

    def _job_command(self, raw_id: str, action: str | None) -> None:
        sim = self.simulator.sim
        if not raw_id.isdigit():
            return self._json(400, {"title": "Bad Request"})
        if sim.job is None or int(raw_id) != sim.job.id:
            return self._json(404, {"title": "Not Found"})
        state = sim.printer_state
        if self.command == "PUT" and action == "pause":
            if state != "PRINTING":
                return self._json(409, {"title": "Conflict"})
            sim.printer_state = sim.job.state = "PAUSED"
        elif self.command == "PUT" and action == "resume":
            if state != "PAUSED":
                return self._json(409, {"title": "Conflict"})
            sim.printer_state = sim.job.state = "PRINTING"
        elif self.command == "DELETE" and action is None:
            if state not in ("PRINTING", "PAUSED", "ATTENTION"):
                return self._json(409, {"title": "Conflict"})
            sim.printer_state = sim.job.state = "STOPPED"
        else:
            return self._json(405, {"title": "Method Not Allowed"})
        return self._send(204)

    def _upload(self, path: str) -> None:
        simulator, sim = self.simulator, self.simulator.sim
        if self.headers.get("Content-Length") is None:
            return self._json(411, {"title": "Length Required"})
        folder, _slash, lfn = path.strip("/").rpartition("/")
        if not lfn or (folder and folder not in sim.folders):
            return self._json(404, {"title": "Not Found"})
        existing = simulator.find_file(path)
        if existing is not None and self.headers.get("Overwrite") != "?1":
            return self._json(409, {"title": "File already exists"})
        sfn = existing.sfn if existing is not None else simulator.short_name(folder, lfn)
        sim_file = simulator.add_file(sfn, lfn, self.body)
        simulator.uploads.append(lfn)
        if self.headers.get("Print-After-Upload") == "?1" and sim.printer_state in ("IDLE", "READY"):
            simulator.start_print(sfn)
        return self._send(201, json.dumps({
            "name": sim_file.sfn.rpartition("/")[2], "ro": False, "type": "PRINT_FILE",
            "m_timestamp": sim_file.m_timestamp, "display_name": sim_file.lfn, "size": len(sim_file.content),
            "refs": sim_file.refs()}).encode())

    def _file(self, sfn: str) -> None:
        sim = self.simulator.sim
        if self.command == "PUT":
            return self._upload(sfn or "")
        sim_file = self.simulator.find_file(sfn or "")
        if self.command == "POST":
            if sim_file is None:
                return self._json(404, {"title": "Gcode doesn't exist"})
            if sim.printer_state not in ("IDLE", "READY"):
                return self._json(409, {"title": "Can't start print now"})
            self.simulator.start_print(sim_file.sfn)
            return self._send(204)
        if self.command not in ("GET", "HEAD"):
            return self._json(405, {"title": "Method Not Allowed"})
        if sim_file is None:
            return self._json(404, {"title": "Not Found"})
        if self.headers.get("If-None-Match") == sim_file.etag:
            return self._send(304, headers={"ETag": sim_file.etag})
        return self._send(200, json.dumps({
            "name": sim_file.sfn, "ro": sim_file.read_only, "type": "PRINT_FILE", "m_timestamp": sim_file.m_timestamp,
            "display_name": sim_file.lfn, "size": len(sim_file.content), "refs": sim_file.refs(),
        }).encode(), headers={"ETag": sim_file.etag})
