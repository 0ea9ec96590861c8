"""The storage of a Bambu printer over implicit FTPS (printers.md §1.9).

The printer speaks TLS from the first byte on port 990 (no `AUTH TLS`), user `bblp`, password =
the access code, `PROT P` and passive mode. Its certificate is named after the serial (checked by
`client.tls_context`, like the MQTT connection). Each data connection must resume the control
connection's TLS session, or the printer's server refuses it or transfers break off.

`BambuStorage` opens one short session (a context manager), lists folders (MLSD when the printer
knows it, else NLST + SIZE + MDTM: X1 answers NLST with full paths, P1 with bare names),
downloads one file into a file object and uploads one from a file object (without the TLS
shutdown at the end of the data connection, on which printers hang). Every failure becomes a
domain error whose message says what to do; the access code never appears in one.
"""

import ftplib
import posixpath
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from printers.exceptions import PrinterAuthError, PrinterUnreachable

from .client import USERNAME, tls_context

FTPS_PORT = 990
FOLDERS = ("/", "/cache", "/model", "/timelapse")
CHUNK_BYTES = 64 * 1024
MAX_ENTRIES_PER_FOLDER = 2000
_UNKNOWN_COMMAND = ("500", "501", "502", "504")


@dataclass(frozen=True)
class StorageEntry:
    path: str  # absolute, e.g. /cache/benchy.gcode.3mf
    name: str
    folder: str
    size_bytes: int | None
    modified: datetime | None


class ImplicitFTPS(ftplib.FTP_TLS):
    """FTP over TLS from the first byte, resuming the control connection's session on data connections."""

    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address=None) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
            except BaseException:
                conn.close()
                raise
        return conn, size


class _DestinationError(Exception):
    """Writing a downloaded chunk (or reading one to upload) failed; the original error is its __cause__."""


def _code(exc: BaseException) -> str:
    return str(exc)[:3]


def _parse_mdtm(value: str) -> datetime | None:
    digits = value.strip().split(".", 1)[0]
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _check_path(path: str) -> str:
    if not path.startswith("/") or any(ch in path for ch in "\r\n\0") or ".." in path.split("/"):
        raise InvalidInput(_("%(path)r is not a file path on the printer.") % {"path": path})
    return path


class BambuStorage:
    """One FTPS session with one Bambu printer: `with BambuStorage(...) as storage: storage.list_files()`."""

    def __init__(self, *, host: str, serial: str, access_code: str, port: int = FTPS_PORT, ca_file: str = "",
                 timeout: float = 10.0):
        self.host, self.port, self.serial = host, port or FTPS_PORT, serial
        self.timeout = timeout
        self._access_code = access_code
        self._context = tls_context(serial=serial, ca_file=ca_file)
        self._ftp: ImplicitFTPS | None = None

    def __repr__(self) -> str:
        return f"<BambuStorage {self.host}:{self.port} {self.serial}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- session -------------------------------------------------------------------------

    def __enter__(self) -> "BambuStorage":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        ftp = ImplicitFTPS(context=self._context, timeout=self.timeout)
        try:
            ftp.connect(self.host, self.port)
            ftp.login(USERNAME, self._access_code)
            ftp.prot_p()
        except Exception as exc:
            ftp.close()
            raise self._error(exc, action=_("log in")) from None
        self._ftp = ftp

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            pass
        finally:
            ftp.close()

    def _error(self, exc: BaseException, *, action: str, path: str = "") -> Exception:
        """The domain error for a failure of `action`; the access code is never part of it."""
        if isinstance(exc, InvalidInput | NotFound | PrinterUnreachable | PrinterAuthError):
            return exc
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PrinterUnreachable(_("%(address)s did not prove to be printer %(serial)s: its TLS certificate is "
                                        "for another name. Check the serial number and the address.")
                                      % {"address": self.address, "serial": self.serial})
        if isinstance(exc, ftplib.error_perm) and _code(exc) == "530":
            return PrinterAuthError(_("%(address)s refused the access code. Enter the access code the printer shows "
                                      "under Settings → Network (LAN only mode).") % {"address": self.address})
        if isinstance(exc, ftplib.error_perm) and _code(exc) == "550" and path:
            return NotFound(_("%(path)s is not on the printer (any more). Refresh the file list.") % {"path": path})
        if isinstance(exc, ftplib.error_temp):
            return PrinterUnreachable(self._scrub(
                _("The printer broke off (%(action)s, it answered: %(reply)s). Try again; if it keeps failing, try "
                  "when the printer is idle.") % {"action": action, "reply": str(exc)[:200]}))
        if isinstance(exc, TimeoutError | socket.timeout):
            return PrinterUnreachable(_("%(address)s did not answer within %(seconds)g s (%(action)s). Is the printer "
                                        "on and in the lab network?") % {"address": self.address,
                                                                          "seconds": self.timeout, "action": action})
        if isinstance(exc, ConnectionRefusedError):
            return PrinterUnreachable(_("%(address)s refused the connection (%(action)s). Is the printer on, and is "
                                        "its FTP port open?") % {"address": self.address, "action": action})
        if isinstance(exc, ssl.SSLError):
            return PrinterUnreachable(_("The TLS connection to %(address)s failed (%(action)s): %(reason)s. Try "
                                        "again.") % {"address": self.address, "action": action,
                                                     "reason": exc.reason or type(exc).__name__})
        if isinstance(exc, OSError | EOFError):
            return PrinterUnreachable(_("The connection to %(address)s failed or was reset (%(action)s). Try "
                                        "again.") % {"address": self.address, "action": action})
        if isinstance(exc, ftplib.Error):
            return PrinterUnreachable(self._scrub(
                _("The printer refused to %(action)s (it answered: %(reply)s).")
                % {"action": action, "reply": str(exc)[:200]}))
        return PrinterUnreachable(_("Talking to %(address)s failed (%(action)s: %(error)s).")
                                  % {"address": self.address, "action": action, "error": type(exc).__name__})

    def _scrub(self, message: str) -> str:
        return message.replace(self._access_code, "***") if self._access_code else message

    @property
    def ftp(self) -> ImplicitFTPS:
        if self._ftp is None:
            raise RuntimeError("BambuStorage is not open")
        return self._ftp

    # --- reads ---------------------------------------------------------------------------

    def list_files(self, folders=FOLDERS) -> list[StorageEntry]:
        """The files (not folders) in `folders`; a folder the printer does not have is skipped."""
        entries: list[StorageEntry] = []
        for folder in folders:
            entries.extend(self.list_folder(folder))
        return entries

    def list_folder(self, folder: str) -> list[StorageEntry]:
        """The files in one folder; none when the printer does not have it."""
        try:
            return self._list_folder(folder)
        except Exception as exc:
            raise self._error(exc, action=_("list %(folder)s") % {"folder": folder}) from None

    def _list_folder(self, folder: str) -> list[StorageEntry]:
        folder = _check_path(folder)
        try:
            facts = list(self.ftp.mlsd(folder, facts=["type", "size", "modify"]))
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return []
            if _code(exc) not in _UNKNOWN_COMMAND:
                raise
            return self._list_plain(folder)
        entries = []
        for name, fact in facts[:MAX_ENTRIES_PER_FOLDER]:
            if fact.get("type", "file").lower() != "file" or name in (".", ".."):
                continue
            size = fact.get("size")
            entries.append(StorageEntry(
                path=posixpath.join(folder, name), name=name, folder=folder,
                size_bytes=int(size) if size and size.isdigit() else None,
                modified=_parse_mdtm(fact["modify"]) if fact.get("modify") else None,
            ))
        return entries

    def _list_plain(self, folder: str) -> list[StorageEntry]:
        try:
            names = self.ftp.nlst(folder)
        except ftplib.error_perm as exc:
            if _code(exc) in ("550", "450"):
                return []
            raise
        self.ftp.voidcmd("TYPE I")  # SIZE needs binary mode on most servers
        entries = []
        for raw in names[:MAX_ENTRIES_PER_FOLDER]:
            path = raw if raw.startswith("/") else posixpath.join(folder, raw)
            name = posixpath.basename(path.rstrip("/"))
            if name in ("", ".", ".."):
                continue
            try:
                size = self.ftp.size(path)
            except ftplib.error_perm:
                continue  # a folder, or gone since the listing
            modified = None
            try:
                modified = _parse_mdtm(self.ftp.sendcmd(f"MDTM {path}")[4:])
            except ftplib.error_perm:
                pass
            entries.append(StorageEntry(path=path, name=name, folder=folder, size_bytes=size, modified=modified))
        return entries

    def size(self, path: str) -> int:
        path = _check_path(path)
        try:
            self.ftp.voidcmd("TYPE I")
            size = self.ftp.size(path)
        except Exception as exc:
            raise self._error(exc, action=_("read the size of %(path)s") % {"path": path}, path=path) from None
        if size is None:
            raise PrinterUnreachable(_("The printer did not say how large %(path)s is.") % {"path": path})
        return size

    def download(self, path: str, destination: BinaryIO, *, expected_size: int | None = None) -> int:
        """Write the file at `path` into `destination`; returns the byte count.

        An exception raised by `destination.write` (e.g. a size limit) ends the transfer and
        propagates unchanged; so does a transfer that ends short of `expected_size`.
        """
        path = _check_path(path)
        written = 0

        def sink(chunk: bytes) -> None:
            nonlocal written
            try:
                destination.write(chunk)
            except Exception as exc:
                raise _DestinationError() from exc
            written += len(chunk)

        try:
            self.ftp.retrbinary(f"RETR {path}", sink, blocksize=CHUNK_BYTES)
        except _DestinationError as exc:
            raise exc.__cause__ from None
        except Exception as exc:
            if written and isinstance(exc, OSError | EOFError | ftplib.error_temp):
                raise PrinterUnreachable(self._broke_off(path, written, expected_size)) from None
            raise self._error(exc, action=_("download %(path)s") % {"path": path}, path=path) from None
        if expected_size is not None and written != expected_size:
            raise PrinterUnreachable(self._broke_off(path, written, expected_size))
        return written

    def upload(self, path: str, source: BinaryIO) -> int:
        """Store what `source` holds at `path` (replacing a file there); returns the byte count.

        The end of the file is a plain TCP end of stream, without a TLS shutdown (`unwrap`): the
        printers' FTP server never answers that and the upload would time out (pybambu's
        `storbinary_no_unwrap`). The data connection is closed only after the server's 226 says the
        file is complete: closing it earlier, with the server's unread TLS records (session tickets)
        still waiting, resets the connection and can cut off the end of the file.
        """
        path = _check_path(path)
        written = 0
        try:
            self.ftp.voidcmd("TYPE I")
            conn = self.ftp.transfercmd(f"STOR {path}")
            try:
                while True:
                    try:
                        chunk = source.read(CHUNK_BYTES)
                    except Exception as exc:
                        raise _DestinationError() from exc
                    if not chunk:
                        break
                    conn.sendall(chunk)
                    written += len(chunk)
                conn.shutdown(socket.SHUT_WR)
                self.ftp.voidresp()
            finally:
                conn.close()
        except _DestinationError as exc:  # reading the source failed: that error, unchanged
            raise exc.__cause__ from None
        except Exception as exc:
            raise self._error(exc, action=_("upload %(path)s") % {"path": path}) from None
        return written

    def _broke_off(self, path: str, written: int, expected_size: int | None) -> str:
        return _("The download of %(path)s broke off after %(got)s of %(size)s bytes: the file changed or vanished "
                 "on the printer, or the connection dropped. Refresh the list and try again.") % {
            "path": path, "got": written, "size": expected_size if expected_size is not None else "?"}
