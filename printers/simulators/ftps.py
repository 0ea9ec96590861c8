"""A fake Bambu printer storage: an implicit-FTPS server on loopback (printers.md §1.9), with pyftpdlib.

Behaves like the printer where the app depends on it: TLS from the first byte (no AUTH TLS),
user `bblp` with the access code, a self-signed certificate whose common name is the serial,
`PROT P` required for data, data connections refused unless they resume the control connection's
TLS session (like vsftpd's `require_ssl_reuse`), folders `/`, `/cache`, `/model`, `/timelapse`.
`mlsd=False` makes it answer MLSD with 500 like printers that only know NLST; `nlst_full_paths`
returns full paths from NLST (X1) instead of bare names (P1).

Files live in a temporary folder made at start and removed at stop; tests copy real sliced files
into it (`add_file(path, source)`). Uploads (STOR) land there too and are recorded in `uploads`
(their paths, in order); `has_file(path)` tells a fake printer whether a file it is told to print
exists (`FakeBambuPrinter(storage=...)`). Faults: `vanish_during_download(path)` sends part of the file,
deletes it and aborts the transfer; `stop()` leaves the port closed (connection refused).

    with BambuFTPSSimulator(serial="01P00A000000001", access_code="12345678") as sim:
        sim.add_file("/cache/cube.gcode.3mf", corpus / "slicer" / "bambustudio-...gcode.3mf")
"""

import datetime
import shutil
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from OpenSSL._util import lib as _openssl
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

USERNAME = "bblp"
FOLDERS = ("cache", "model", "timelapse")


def self_signed_certificate(directory: Path, common_name: str) -> Path:
    """A PEM file holding a fresh key and a self-signed certificate for `common_name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "printer.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    path.chmod(0o600)
    return path


class _VanishingFile:
    """Reads part of the file, then deletes it and fails like a file removed under the server."""

    def __init__(self, handle, path: str):
        self._handle, self._path = handle, path
        self._served = False
        self.name = handle.name
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self._served:
            Path(self._path).unlink(missing_ok=True)
            raise FileNotFoundError(2, "No such file or directory")
        self._served = True
        total = Path(self._path).stat().st_size
        return self._handle.read(max(1, min(size if size > 0 else total, total // 2)))

    def seek(self, *args):
        return self._handle.seek(*args)

    def close(self) -> None:
        self.closed = True
        self._handle.close()


class _FS(AbstractedFS):
    def open(self, filename, mode):
        handle = super().open(filename, mode)
        simulator = self.cmd_channel.simulator
        ftp_path = self.fs2ftp(filename)
        if "r" in mode and ftp_path in simulator.vanishing:
            simulator.vanishing.discard(ftp_path)
            return _VanishingFile(handle, filename)
        return handle


class _DataHandler(TLS_DTPHandler):
    """Holds back data and the end of the transfer until the TLS handshake is done.

    pyftpdlib would otherwise start sending (or close the connection, for an empty listing)
    in the middle of the handshake, which a real printer never does. An upload ends, like on the
    printers, with the end of the stream, without a TLS shutdown.
    """

    def __init__(self, sock, cmd_channel):
        self._held: list | None = []
        super().__init__(sock, cmd_channel)
        if self._ssl_requested and not self._closed:
            self.modify_ioloop_events(self.ioloop.READ | self.ioloop.WRITE)

    def _hold(self, name: str, *args) -> bool:
        if self._held is None or not self._ssl_requested:
            return False
        self._held.append((name, args))
        return True

    def push(self, data):
        if not self._hold("push", data):
            super().push(data)

    def push_with_producer(self, producer):
        if not self._hold("push_with_producer", producer):
            super().push_with_producer(producer)

    def close_when_done(self):
        if not self._hold("close_when_done"):
            super().close_when_done()

    def close(self):
        if self.receive and self.transfer_finished:
            # The client ended the upload with the end of the stream, without a TLS shutdown, as clients
            # of the printers must: close plainly (a TLS shutdown would wait for an answer forever).
            self._error = True
        super().close()

    def handle_ssl_established(self):
        simulator = self.cmd_channel.simulator
        reused = bool(_openssl.SSL_session_reused(self.socket._ssl))
        simulator.data_connections.append(reused)
        held, self._held = self._held or [], None
        if simulator.require_session_reuse and not reused:
            self.cmd_channel.respond("522 SSL connection failed: session reuse required.")
            self.close()
            return
        for name, args in held:
            if self._closed:
                break
            getattr(self, name)(*args)


class _ControlHandler(TLS_FTPHandler):
    simulator: "BambuFTPSSimulator"
    dtp_handler = _DataHandler
    abstracted_fs = _FS
    tls_control_required = True
    tls_data_required = True
    auth_failed_timeout = 0
    banner = "Bambu printer storage (simulated)"

    def handle(self):
        # Implicit TLS: the handshake comes first, the banner after it (handle_ssl_established).
        self.secure_connection(self.ssl_context)

    def handle_ssl_established(self):
        if not self._closed:
            TLS_FTPHandler.handle(self)

    def ftp_NLST(self, path):
        if not self.simulator.nlst_full_paths:
            return super().ftp_NLST(path)
        try:
            names = sorted(self.run_as_current_user(self.fs.listdir, path))
        except OSError as err:
            self.respond(f"550 {err.strerror}.")
            return None
        folder = self.fs.fs2ftp(path).rstrip("/")
        data = "".join(f"{folder}/{name}\r\n" for name in names).encode(self.encoding)
        self.push_dtp_data(data, cmd="NLST")
        return path

    def on_file_received(self, file):
        self.simulator.uploads.append(self.fs.fs2ftp(file))

    def log_cmd(self, cmd, arg, respcode, respstr):
        self.simulator.commands.append((cmd, "***" if cmd == "PASS" else arg, respcode))

    def log(self, msg, logfun=None):  # quiet: tests read `commands` instead
        pass

    def logline(self, msg, logfun=None):
        pass

    def log_exception(self, instance):
        pass


class BambuFTPSSimulator:
    def __init__(self, *, serial: str = "01P00A000000001", access_code: str = "12345678", port: int = 0,
                 mlsd: bool = True, nlst_full_paths: bool = False, require_session_reuse: bool = True,
                 certificate_name: str | None = None):
        self.serial = serial
        self.access_code = access_code
        self.mlsd = mlsd
        self.nlst_full_paths = nlst_full_paths
        self.require_session_reuse = require_session_reuse
        self.certificate_name = certificate_name or serial
        self.vanishing: set[str] = set()
        self.data_connections: list[bool] = []  # one entry per data connection: did it resume the session?
        self.commands: list[tuple[str, str, int]] = []  # (command, argument, reply code); PASS masked
        self.uploads: list[str] = []  # paths of the files received (STOR), in order
        self._port = port
        self._dir: Path | None = None
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def root(self) -> Path:
        if self._dir is None:
            raise RuntimeError("start the simulator first")
        return self._dir / "sdcard"

    def start(self) -> "BambuFTPSSimulator":
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="fablab-bambu-ftps-"))
            for folder in FOLDERS:
                (self._dir / "sdcard" / folder).mkdir(parents=True)
        certificate = self_signed_certificate(self._dir, self.certificate_name)
        authorizer = DummyAuthorizer()
        authorizer.add_user(USERNAME, self.access_code, str(self.root), perm="elradfmw")
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_certificate_chain_file(str(certificate))
        context.use_privatekey_file(str(certificate))
        context.set_session_id(b"fablab-bambu-sim")
        proto_cmds = dict(TLS_FTPHandler.proto_cmds)
        if not self.mlsd:
            proto_cmds.pop("MLSD", None)
            proto_cmds.pop("MLST", None)
        handler = type("Handler", (_ControlHandler,), {
            "simulator": self, "authorizer": authorizer, "ssl_context": context, "proto_cmds": proto_cmds,
            "passive_ports": None,
        })
        self._server = FTPServer(("127.0.0.1", self._port), handler, ioloop=IOLoop())
        self._port = self._server.address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"bambu-ftps-{self._port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        server = self._server
        try:
            while not self._stopping.is_set():
                server.ioloop.loop(timeout=0.02, blocking=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        """Close the port (the files stay until `close()`)."""
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(5)
            self._thread = None
            self._server = None

    def close(self) -> None:
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "BambuFTPSSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- test controls -------------------------------------------------------------------

    def _local(self, path: str) -> Path:
        relative = Path(path.lstrip("/"))
        if ".." in relative.parts:
            raise ValueError(f"{path!r} leaves the printer's storage")
        return self.root / relative

    def add_file(self, path: str, source: bytes | Path) -> Path:
        """Put a file on the printer at `path` (e.g. /cache/cube.gcode.3mf), copied from `source`."""
        local = self._local(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            local.write_bytes(source)
        else:
            shutil.copyfile(source, local)
        return local

    def remove_file(self, path: str) -> None:
        self._local(path).unlink()

    def has_file(self, path: str) -> bool:
        """Whether the printer's storage holds a file at `path` (e.g. /benchy.gcode.3mf)."""
        try:
            return self._local(path).is_file()
        except ValueError:
            return False

    def read_file(self, path: str) -> bytes:
        return self._local(path).read_bytes()

    def vanish_during_download(self, path: str) -> None:
        """The next download of `path` sends part of it, then the file is deleted and the transfer aborts."""
        self.vanishing.add(path)
