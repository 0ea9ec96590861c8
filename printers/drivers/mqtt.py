"""One network loop for many MQTT clients (paho-mqtt v2's external-loop API).

`MqttNetwork` serves any number of members, each owning one paho client, on one thread: one
`selectors` loop reads and writes every socket and runs timers, a few connector threads do the
blocking TCP/TLS connects at a limited rate. `BufferedClient` is paho's client reading its socket
in large chunks; `shared_network(name)` is a process-wide loop by name. Nothing here knows a
printer brand: the Bambu driver's connections and the Bambu simulators are its members.
"""

import collections
import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt

logger = logging.getLogger(__name__)



class BufferedClient(mqtt.Client):
    """paho's client, reading its socket in large chunks.

    paho reads each packet with three to five `recv` calls (command byte, length bytes, body); each
    releases the GIL, and in a process that also runs database work every release can cost the
    network thread milliseconds before it runs again. Here one `recv` of up to 64 KiB feeds many
    packets; `buffered()` tells the network loop that complete packets may still be waiting.
    """

    READ_SIZE = 65536

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_pos = 0
        self._read_sock = None

    def buffered(self) -> int:
        return len(self._read_buffer) - self._read_pos if self._read_sock is self._sock else 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_sock is not self._sock or self._read_pos >= len(self._read_buffer):
            self._read_sock, self._read_buffer, self._read_pos = self._sock, b"", 0
            data = super()._sock_recv(max(bufsize, self.READ_SIZE))
            if not data:
                return data  # end of stream
            self._read_buffer = data
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start:self._read_pos]



class MqttNetwork:
    """The network I/O and timers of many paho clients on one thread (paho's external-loop API).

    One `selectors` loop reads and writes every member's socket, calls each member's
    `network_tick(now)` every `tick_seconds` and runs timers (`call_at`). Blocking connects (TCP,
    TLS handshake) run on `connect_threads` worker threads, at most `connects_per_second` a second
    (a token bucket holding `connect_burst` tokens), so that a slow or unreachable printer never
    stalls the loop and a restart does not open hundreds of TLS sessions in the same instant.

    A member owns one paho client (`member.client`) and implements:
    - network_tick(now): timers of its own (keepalive, watchdog, reconnect), on the loop thread;
    - network_connect(): the blocking connect, on a connector thread (raises when it failed);
    - network_connected() / network_connect_failed(exc) / network_lost(rc): on the loop thread.
    Sockets are opened by connector threads but registered, read, written and closed only on
    the loop thread; other threads may publish (paho queues the packet and asks for a write).
    """

    def __init__(self, *, name: str = "mqtt", tick_seconds: float = 0.2, connects_per_second: float = 25.0,
                 connect_burst: float | None = None, connect_threads: int = 4) -> None:
        if connects_per_second <= 0 or connect_threads < 1:
            raise ValueError("connects_per_second must be positive and connect_threads at least 1.")
        self.name = name
        self.tick_seconds = tick_seconds
        self.rate = float(connects_per_second)
        self.burst = float(connect_burst or max(1.0, self.rate))
        self.connect_threads = connect_threads
        self.members: set = set()  # loop thread only
        self._selector = selectors.DefaultSelector()
        self._calls: collections.deque = collections.deque()
        self._writers: set = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._waiting: collections.deque = collections.deque()  # members waiting for a connect token
        self._tokens = self.burst
        self._refilled = time.monotonic()
        self._timers: list = []
        self._timer_order = itertools.count()
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.stats = {"connects": 0, "connect_failures": 0, "reads": 0}

    def __repr__(self) -> str:
        return f"<MqttNetwork {self.name} members={len(self.members)}>"

    # -- lifecycle --

    def start(self) -> "MqttNetwork":
        if self._thread is None:
            self._executor = ThreadPoolExecutor(self.connect_threads, thread_name_prefix=f"{self.name}-connect")
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-network", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def stop(self, timeout: float = 5.0) -> None:
        """Close every member's connection and end the loop."""
        if self._thread is None:
            return
        self.run_in_loop(lambda: [self._discard(member) for member in list(self.members)], timeout=timeout)
        self._stopping = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    # -- calls from other threads --

    def call_soon(self, function) -> None:
        """Run `function()` on the loop thread (thread-safe)."""
        self._calls.append(function)
        self._wake()

    def run_in_loop(self, function, *, timeout: float = 5.0):
        """Run `function()` on the loop thread and wait for it (up to `timeout` s); returns its result."""
        if self.in_loop() or not self.running:
            return function()
        done = threading.Event()
        box = []

        def call():
            try:
                box.append(function())
            finally:
                done.set()

        self.call_soon(call)
        done.wait(timeout)
        return box[0] if box else None

    def add(self, member) -> None:
        """Serve `member` from now on (thread-safe); it connects on its first tick."""
        client = member.client
        client.user_data_set(member)
        client.on_socket_register_write = self._register_write
        client.on_socket_close = self._socket_closed
        self.start()
        self.call_soon(lambda: self.members.add(member))

    def remove(self, member, *, timeout: float = 5.0) -> None:
        """Stop serving `member` and close its connection; waits until that is done."""
        self.run_in_loop(lambda: self._discard(member), timeout=timeout)

    # -- calls on the loop thread --

    def call_at(self, when: float, function) -> None:
        """Run `function()` on the loop thread at time.monotonic() `when` (call it on the loop thread)."""
        heapq.heappush(self._timers, (when, next(self._timer_order), function))

    def request_connect(self, member) -> None:
        """Queue a connect of `member`; it runs when a token is free, on a connector thread."""
        self._waiting.append(member)

    def close_client(self, client) -> None:
        """Close a client's socket on the loop thread: DISCONNECT when it can be written, else a hard close."""
        sock = client.socket()
        if sock is None:
            return
        try:
            client.disconnect()
            client.loop_write()
        except Exception:  # noqa: BLE001 - the socket is going away anyway
            pass
        if client.socket() is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                client.loop_read()  # reads the end of stream: paho closes its socket
            except Exception:  # noqa: BLE001
                pass

    def _discard(self, member) -> None:
        self.members.discard(member)
        self.close_client(member.client)

    # -- paho callbacks --

    def _register_write(self, client, member, sock) -> None:
        with self._lock:
            self._writers.add(member)
        if not self.in_loop():
            self._wake()

    def _socket_closed(self, client, member, sock) -> None:
        if self.in_loop() or not self.running:
            self._unregister(sock)
        else:
            logger.warning("MQTT socket of %r closed outside the network loop.", member)
            self.call_soon(lambda: self._unregister(sock))

    # -- the loop --

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (already woken) or closed
            pass

    def _unregister(self, sock) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _set_events(self, sock, events: int, member) -> None:
        try:
            key = self._selector.get_key(sock)
        except (KeyError, ValueError):
            try:
                self._selector.register(sock, events, member)
            except (KeyError, ValueError, OSError):
                pass
            return
        if key.events != events:
            self._selector.modify(sock, events, member)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stopping:
            now = time.monotonic()
            wake_at = min(next_tick, self._timers[0][0]) if self._timers else next_tick
            timeout = 0 if (self._calls or self._writers) else max(0.0, wake_at - now)
            try:
                events = self._selector.select(timeout)
            except OSError:
                logger.exception("The MQTT network loop's select failed.")
                time.sleep(0.05)
                continue
            for key, mask in events:
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except OSError:
                        pass
                    continue
                if mask & selectors.EVENT_READ:
                    self._read(key.data, key.fileobj)
                if mask & selectors.EVENT_WRITE:
                    self._write(key.data)
            self._guarded(self._run_calls)
            self._flush_writers()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _when, _order, function = heapq.heappop(self._timers)
                self._guarded(function)
            if now >= next_tick:
                next_tick = now + self.tick_seconds
                for member in list(self.members):
                    self._guarded(member.network_tick, now)
                self._dispatch_connects(now)
        self._close()

    def _close(self) -> None:
        for member in list(self.members):
            self._guarded(self._discard, member)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    @staticmethod
    def _guarded(function, *args) -> None:
        try:
            function(*args)
        except Exception:  # noqa: BLE001 - one member's bug must not stop the others
            logger.exception("MQTT network loop: %r failed.", function)

    def _run_calls(self) -> None:
        while self._calls:
            self._guarded(self._calls.popleft())

    def _read(self, member, sock) -> None:
        client = member.client
        self.stats["reads"] += 1
        for _ in range(256):
            try:
                rc = client.loop_read()
            except Exception:  # noqa: BLE001 - an exception in a callback: the connection is in doubt
                logger.exception("Reading from %r failed.", member)
                rc = mqtt.MQTT_ERR_UNKNOWN
                self.close_client(client)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                if member in self.members:
                    self._guarded(member.network_lost, rc)
                return
            if client.socket() is not sock:
                break
            if not client.buffered() and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break  # more data still in the kernel is reported again by select
        if client.want_write():
            self._write(member)

    def _write(self, member) -> None:
        client = member.client
        sock = client.socket()
        if sock is None:
            return
        try:
            rc = client.loop_write()
        except Exception:  # noqa: BLE001
            logger.exception("Writing to %r failed.", member)
            rc = mqtt.MQTT_ERR_UNKNOWN
        if rc != mqtt.MQTT_ERR_SUCCESS:
            if member in self.members:
                self._guarded(member.network_lost, rc)
            return
        sock = client.socket()
        if sock is not None and member in self.members and self._registered(sock):
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
            self._set_events(sock, wanted, member)

    def _registered(self, sock) -> bool:
        try:
            self._selector.get_key(sock)
        except (KeyError, ValueError):
            return False
        return True

    def _flush_writers(self) -> None:
        if not self._writers:
            return
        with self._lock:
            writers, self._writers = self._writers, set()
        for member in writers:
            if member.client.socket() is not None:
                self._write(member)

    def _dispatch_connects(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        while self._waiting and self._tokens >= 1 - 1e-9:  # tolerate float rounding of elapsed * rate
            member = self._waiting.popleft()
            if member not in self.members:
                continue
            self._tokens -= 1
            self.stats["connects"] += 1
            self._executor.submit(self._connect, member)

    def _connect(self, member) -> None:
        """On a connector thread: the blocking connect; its outcome is handled on the loop thread."""
        try:
            member.network_connect()
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the member
            self.call_soon(lambda error=exc: self._connect_failed(member, error))
            return
        self.call_soon(lambda: self._connected(member))

    def _connect_failed(self, member, exc: Exception) -> None:
        self.stats["connect_failures"] += 1
        if member in self.members:
            member.network_connect_failed(exc)

    def _connected(self, member) -> None:
        client = member.client
        sock = client.socket()
        if member not in self.members:
            self.close_client(client)
            return
        if sock is None:
            member.network_connect_failed(ConnectionError("the connection closed at once"))
            return
        self._set_events(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, member)
        member.network_connected()
        self._write(member)


_default_networks: dict[str, MqttNetwork] = {}
_default_lock = threading.Lock()


def shared_network(name: str = "mqtt", **options) -> MqttNetwork:
    """A process-wide network loop by name, started on first use (for connections made without one)."""
    with _default_lock:
        network = _default_networks.get(name)
        if network is None or not network.running:
            network = _default_networks[name] = MqttNetwork(name=name, **options).start()
        return network
