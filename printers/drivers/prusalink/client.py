"""PrusaLink (Buddy firmware: MK4/MK4S, XL, Core One, MINI; also RPi PrusaLink) over HTTP.

`PrusaLinkClient` speaks the v1 API with HTTP Digest (realm "Printer API", user "maker",
no qop; requests answers a `stale=true` challenge by retrying with the new nonce) or the
`X-Api-Key` header; it reads the state, lists, downloads and uploads files and sends commands.
Every failure becomes a domain error with a clear message:
PrinterUnreachable (refused, reset, timeout, 5xx), PrinterAuthError (401), PrinterConflict
(409: wrong state for pause/resume/stop), NotFound (404), ReportError (unreadable body).
`normalise` maps `/api/v1/status` (+ `/api/v1/job`) to the unified state (printers.md §2, §3).
"""

import json
import logging
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

import requests
from requests.auth import HTTPDigestAuth

from fablab.exceptions import NotFound
from printers.choices import PrinterState
from printers.exceptions import PrinterAuthError, PrinterConflict, PrinterUnreachable, ReportError
from printers.state import NormalisedState, integer, mapping, number, sequence, text, unified_state

logger = logging.getLogger(__name__)

DEFAULT_PORT = 80
MAX_JSON_BYTES = 2 * 1024 * 1024
STATES = {
    "IDLE": PrinterState.IDLE,
    "READY": PrinterState.IDLE,
    "BUSY": PrinterState.BUSY,
    "PRINTING": PrinterState.PRINTING,
    "PAUSED": PrinterState.PAUSED,
    "ATTENTION": PrinterState.NEEDS_ATTENTION,
    "FINISHED": PrinterState.FINISHED,
    "STOPPED": PrinterState.CANCELLED,
    "ERROR": PrinterState.FAILED,
}


@dataclass(frozen=True)
class RemoteFile:
    name: str  # 8.3 short name (SFN), what the API addresses
    display_name: str  # long name (LFN)
    type: str
    read_only: bool
    m_timestamp: int | None
    download: str  # refs.download, e.g. /usb/X~1.BGC; empty while uploading or for folders


class PrusaLinkClient:
    def __init__(self, *, host: str, port: int | None = None, password: str, username: str = "maker",
                 use_api_key: bool = False, timeout: float = 5.0):
        self.base_url = f"http://{host}:{port or DEFAULT_PORT}"
        self.timeout = timeout
        self.session = requests.Session()
        if use_api_key:
            self.session.headers["X-Api-Key"] = password
        else:
            self.session.auth = HTTPDigestAuth(username, password)

    def __repr__(self) -> str:
        return f"<PrusaLinkClient {self.base_url}>"

    def close(self) -> None:
        self.session.close()

    # --- transport -----------------------------------------------------------------------

    def _request(self, method: str, path: str, *, action: str, stream: bool = False, **kwargs) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, stream=stream, **kwargs)
        except requests.Timeout:
            raise PrinterUnreachable(f"{self.base_url} did not answer within {self.timeout:g} s ({action}).") from None
        except requests.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "connection failed or was reset"
            raise PrinterUnreachable(f"{self.base_url}: {reason} ({action}).") from None
        except requests.RequestException as exc:
            raise PrinterUnreachable(f"{self.base_url}: {type(exc).__name__} ({action}).") from None
        status = response.status_code
        if status == 401:
            raise PrinterAuthError(
                f"{self.base_url} refused the credentials ({action}). Check the PrusaLink password and "
                "whether the printer accepts the chosen authentication."
            )
        if status == 409:
            raise PrinterConflict(f"The printer refused to {action} in its current state (HTTP 409).")
        if status == 404:
            raise NotFound(f"The printer has no {path} ({action}, HTTP 404).")
        if status >= 500:
            raise PrinterUnreachable(f"{self.base_url} answered HTTP {status} ({action}).")
        if status >= 400:
            raise ReportError(f"{self.base_url} refused the request with HTTP {status} ({action}).")
        return response

    def _json(self, path: str, *, action: str, allow_empty: bool = False) -> dict | None:
        response = self._request("GET", path, action=action)
        if response.status_code == 204 and allow_empty:
            return None
        body = response.content
        if len(body) > MAX_JSON_BYTES:
            raise ReportError(f"Answer to {action} is too large ({len(body)} bytes).")
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ReportError(f"Answer to {action} is not valid UTF-8 (byte {exc.start}).") from None
        except json.JSONDecodeError as exc:
            raise ReportError(f"Answer to {action} is not valid JSON (line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}).") from None
        if not isinstance(data, dict):
            raise ReportError(f"Answer to {action} must be a JSON object, got {type(data).__name__}.")
        return data

    # --- reads ---------------------------------------------------------------------------

    def version(self) -> dict:
        return self._json("/api/version", action="read the version")

    def info(self) -> dict:
        return self._json("/api/v1/info", action="read the printer info")

    def status(self) -> dict:
        return self._json("/api/v1/status", action="read the status")

    def job(self) -> dict | None:
        """The current job, or None when there is none (HTTP 204)."""
        return self._json("/api/v1/job", action="read the job", allow_empty=True)

    def files(self, *, storage: str = "usb", folder: str = "") -> list[RemoteFile]:
        path = f"/api/v1/files/{quote(storage)}/{quote(folder.strip('/'))}"
        data = self._json(path.rstrip("/") + "/", action="list the files")
        files = []
        for child in sequence(data.get("children"), "children"):
            child = mapping(child, "file entry")
            refs = mapping(child.get("refs"), "refs")
            files.append(RemoteFile(
                name=text(child.get("name"), "name"), display_name=text(child.get("display_name"), "display_name")
                or text(child.get("name"), "name"), type=text(child.get("type"), "type"),
                read_only=bool(child.get("ro", child.get("read_only", False))),
                m_timestamp=integer(child.get("m_timestamp"), "m_timestamp"),
                download=text(refs.get("download"), "refs.download"),
            ))
        return files

    def storages(self) -> list[str]:
        """Names of the available storages (e.g. ["usb"]) from /api/v1/storage."""
        data = self._json("/api/v1/storage", action="list the storages")
        names = []
        for entry in sequence(data.get("storage_list"), "storage_list"):
            entry = mapping(entry, "storage")
            name = text(entry.get("name"), "storage.name") or text(entry.get("path"), "storage.path").strip("/")
            if name and entry.get("available", True) is not False:
                names.append(name)
        return names

    def file_info(self, *, storage: str = "usb", path: str) -> dict:
        """One file's metadata (incl. `size`) from GET /api/v1/files/<storage>/<path>."""
        return self._json(f"/api/v1/files/{quote(storage)}/{quote(path.strip('/'))}", action="read the file info")

    def download(self, ref: str, destination: BinaryIO, *, chunk_size: int = 64 * 1024) -> int:
        """Write the file behind `refs.download` (e.g. /usb/X~1.BGC) to `destination`; returns the byte count."""
        if not ref.startswith("/"):
            ref = f"/{ref}"  # the legacy API gives refs without the leading slash
        if not ref.startswith(("/usb/", "/local/", "/sdcard/")):
            raise ReportError(f"{ref!r} is not a download reference of this printer.")
        response = self._request("GET", ref, action="download the file", stream=True)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            raise ReportError("The printer answered the download with JSON metadata instead of the file.")
        written = 0
        try:
            for chunk in response.iter_content(chunk_size):
                destination.write(chunk)
                written += len(chunk)
        except requests.RequestException:
            raise PrinterUnreachable(f"{self.base_url}: the download was interrupted.") from None
        finally:
            response.close()
        return written

    def upload(self, *, storage: str = "usb", path: str, source: BinaryIO, size: int | None = None) -> None:
        """Store `source` as `path` on `storage` (PUT /api/v1/files/<storage>/<path>), replacing a file there.

        The body is streamed from `source`; `size` (else the length of a real or in-memory file) goes into
        Content-Length, which the firmware wants. With digest authentication, call another endpoint first:
        the upload then carries the nonce at once instead of being sent twice.
        """
        headers = {"Content-Type": "application/octet-stream", "Overwrite": "?1"}
        if size is not None:
            headers["Content-Length"] = str(size)
        self._request("PUT", f"/api/v1/files/{quote(storage)}/{quote(path.strip('/'))}", action="upload the file",
                      data=source, headers=headers)

    # --- commands ------------------------------------------------------------------------

    def _job_path(self, job_id) -> str:
        if job_id is None or not str(job_id).isdigit():
            raise PrinterConflict(f"The printer has no job to control (job id {job_id!r}).")
        return f"/api/v1/job/{int(job_id)}"

    def pause(self, job_id) -> None:
        self._request("PUT", f"{self._job_path(job_id)}/pause", action=f"pause job {job_id}")

    def resume(self, job_id) -> None:
        self._request("PUT", f"{self._job_path(job_id)}/resume", action=f"resume job {job_id}")

    def stop(self, job_id) -> None:
        self._request("DELETE", self._job_path(job_id), action=f"stop job {job_id}")

    def start_print(self, *, storage: str = "usb", path: str) -> None:
        self._request("POST", f"/api/v1/files/{quote(storage)}/{quote(path.strip('/'))}", action="start the print")


def normalise(status: dict, job: dict | None = None) -> NormalisedState:
    """`/api/v1/status` (and, when fetched, `/api/v1/job`) → the unified state."""
    status = mapping(status, "status")
    printer = mapping(status.get("printer"), "printer")
    if not isinstance(printer.get("state"), str | None):
        raise ReportError(f"printer.state: expected text, got {type(printer.get('state')).__name__}.")
    raw = text(printer.get("state"), "printer.state").strip().upper()
    if not raw:
        raise ReportError("printer.state is missing from the status.")
    state = unified_state(raw, STATES, printer="PrusaLink", field="state")
    status_job = mapping(status.get("job"), "job")
    job = mapping(job, "job") if job is not None else {}
    job_id = status_job.get("id", job.get("id"))
    if job_id is not None and not isinstance(job_id, int | str) or isinstance(job_id, bool):
        raise ReportError(f"job.id: expected an id, got {job_id!r}.")
    job_key = "" if job_id is None else str(job_id)
    same_job = job_key and str(job.get("id", "")) == job_key
    file = mapping(job.get("file"), "job.file") if same_job else {}
    progress = number(status_job.get("progress", job.get("progress") if same_job else None), "job.progress")
    remaining = integer(status_job.get("time_remaining", job.get("time_remaining") if same_job else None),
                        "job.time_remaining")
    errors = []
    status_printer = printer.get("status_printer")
    if isinstance(status_printer, dict) and status_printer.get("ok") is False:
        errors.append({"source": "printer", "code": "status_printer", "severity": "",
                       "text": text(status_printer.get("message"), "status_printer.message")})
    reason = ""
    if raw == "ERROR":
        reason = "the printer reports a fatal error"
        errors.append({"source": "printer", "code": "ERROR", "severity": "fatal",
                       "text": "The printer reports a fatal error; see its screen."})
    elif raw == "ATTENTION":
        reason = "the printer waits for the operator"
    elif raw == "STOPPED":
        reason = "stopped on the printer or through the API"
    return NormalisedState(
        state=state,
        raw_state=raw,
        progress_percent=progress,
        remaining_seconds=None if remaining is None else max(0, remaining),
        nozzle_temp_c=number(printer.get("temp_nozzle"), "printer.temp_nozzle"),
        nozzle_target_c=number(printer.get("target_nozzle"), "printer.target_nozzle"),
        bed_temp_c=number(printer.get("temp_bed"), "printer.temp_bed"),
        bed_target_c=number(printer.get("target_bed"), "printer.target_bed"),
        current_file=(text(file.get("display_name"), "file.display_name") or text(file.get("name"), "file.name"))[:255],
        job_key=job_key,
        errors=errors,
        reason=reason,
    )
