"""Settings of the printers app's MQTT side, each with its default.

Read at call time (`value("NAME")`) so that tests and deployments can override any of them
in Django settings without this app's code changing:

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
"""

from django.conf import settings

DEFAULTS = {
    "BAMBU_CA_FILE": "",
    "BAMBU_PLAIN_MQTT_PORTS": (1883,),
    "BAMBU_KEEPALIVE_SECONDS": 30,
    "BAMBU_WATCHDOG_SECONDS": 60.0,
    "BAMBU_BACKOFF_MIN_SECONDS": 1.0,
    "BAMBU_BACKOFF_MAX_SECONDS": 30.0,
    "BAMBU_COMMAND_TIMEOUT_SECONDS": 5.0,
    "BAMBU_CONNECTS_PER_SECOND": 25.0,
    "BAMBU_CONNECT_THREADS": 4,
    "PRINTER_STATE_WRITE_SECONDS": 5.0,
    "PRINTER_RECONCILE_SECONDS": 5.0,
}


def value(name: str):
    return getattr(settings, name, DEFAULTS[name])
