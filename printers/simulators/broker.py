"""A throw-away Mosquitto broker for the Bambu simulators and the tests (printers.md §4.1).

It reproduces a Bambu printer's broker: TLS with a certificate whose name is the printer's serial
(CN = serial, no IP SAN, signed by a private CA made here), `allow_anonymous false`, a password
file with `bblp:<access code>`, and an ACL so that each fake printer (user = its serial) writes
only its own report topic and reads only its own request topic. `max_connections` reproduces the
printers' connection limit.

Mosquitto 2.0 reads only hashed password files. The hash is written here (no `mosquitto_passwd`
needed) in Mosquitto's PBKDF2-SHA512 format: `user:$7$<iterations>$<base64 salt>$<base64 hash>`,
salt 12 random bytes, 64-byte derived key, 101 iterations (Mosquitto's default).

    with MosquittoBroker(tmp_path, users={"bblp": code, serial: code}, tls_names=[serial]) as broker:
        ...  # broker.port, broker.ca_file; broker.restart() for the broker-restart fault
"""

import base64
import datetime
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = os.environ.get("MOSQUITTO_BINARY", "/usr/sbin/mosquitto")
PBKDF2_ITERATIONS = 101


class BrokerError(RuntimeError):
    pass


def mosquitto_binary() -> str:
    """The Mosquitto executable; BrokerError (never a skip) when it is missing."""
    path = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if not path:
        raise BrokerError(f"Mosquitto is not installed ({MOSQUITTO} not found): install the mosquitto package.")
    return path


def password_line(username: str, password: str) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, dklen=64)
    return f"{username}:$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def make_certificates(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate named after `names[0]` (CN); several names → SAN DNS too.

    Returns (ca_file, cert_file, key_file).
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fablab test BBL CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if len(names) > 1:  # a real printer has no SAN; one broker for several fake printers needs them
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    ca_file = _write_pem(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = _write_pem(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM))
    key_file = _write_pem(directory / "server.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return ca_file, cert_file, key_file


class MosquittoBroker:
    def __init__(self, directory: Path, *, users: dict[str, str], tls_names: list[str] | None = None,
                 port: int | None = None, max_connections: int = -1, plain_port: int | None = None) -> None:
        """`plain_port`: with TLS, a second listener without TLS on that port (for the fake printers'
        own connections, so that only the listener under test pays for TLS)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.tls_names = list(tls_names or [])
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.max_connections = max_connections
        self.plain_port = plain_port
        self.ca_file: Path | None = None
        self.process: subprocess.Popen | None = None
        self.log_file = self.directory / "mosquitto.log"
        self._write_config()

    def _write_config(self) -> None:
        passwd = self.directory / "passwd"
        passwd.write_text("".join(password_line(u, p) + "\n" for u, p in self.users.items()))
        passwd.chmod(0o600)
        acl = self.directory / "acl"
        acl.write_text(
            "user bblp\ntopic read device/+/report\ntopic write device/+/request\n\n"
            "pattern write device/%u/report\npattern read device/%u/request\n"
        )
        acl.chmod(0o600)
        lines = [
            "per_listener_settings false", "allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}",
            "persistence false", "log_dest stderr", "log_type error", "log_type warning",
            f"max_connections {self.max_connections}", f"listener {self.port} {self.host}",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        if self.tls_names:
            self.ca_file, cert_file, key_file = make_certificates(self.directory, self.tls_names)
            lines += [f"cafile {self.ca_file}", f"certfile {cert_file}", f"keyfile {key_file}",
                      "tls_version tlsv1.2"]
            if self.plain_port:
                lines.append(f"listener {self.plain_port} {self.host}")
        (self.directory / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> "MosquittoBroker":
        binary = mosquitto_binary()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen([binary, "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"Mosquitto exited at start:\n{self.log_file.read_text(errors='replace')}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError("Mosquitto did not open its port in time.")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> "MosquittoBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
