"""Settings of the printers app, read at call time (`value("NAME")`).

Each is set once, with its default, in `fablab/settings.py` (which reads the environment); this
module repeats no default, so a deployment or a test changes a setting in one place:

- BAMBU_CA_FILE: a PEM bundle with Bambu's CA(s). Set: the printer's certificate chain is verified
  and its name must be the serial. Empty (default): the chain is not verified (Bambu's CA is not
  public) but the certificate's name must still be the printer's serial.
- BAMBU_PLAIN_MQTT_PORTS: ports where a "printer" speaks MQTT without TLS. Real printers never do;
  the simulators on a local broker (the demo, 127.0.0.1:1883) do.
- BAMBU_KEEPALIVE_SECONDS, BAMBU_WATCHDOG_SECONDS (no report for that long → offline),
  BAMBU_BACKOFF_MIN_SECONDS / BAMBU_BACKOFF_MAX_SECONDS (reconnect delays, doubled with jitter),
  BAMBU_COMMAND_TIMEOUT_SECONDS (wait for a command's acknowledgement or effect),
- BAMBU_CONNECTS_PER_SECOND: new printer connections (TCP + TLS + MQTT connect) run_printers opens
  per second at most, so that a restart with hundreds of printers comes up in a steady stream;
  BAMBU_CONNECT_THREADS: how many of those connects may wait on the network at the same time.
- PRINTER_STATE_WRITE_SECONDS: run_printers writes a printer's unchanged state (telemetry) at most
  this often; state changes are written at once. PRINTER_RECONCILE_SECONDS: how often run_printers
  re-reads the printer list.
- BAMBU_FTPS_PORT, PRINTER_FILES_TIMEOUT_SECONDS, PRINTER_FILES_LOCK_WAIT_SECONDS: files on printers.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def value(name: str):
    try:
        return getattr(settings, name)
    except AttributeError:
        raise ImproperlyConfigured(f"The setting {name} is missing; fablab/settings.py defines it.") from None
