"""Printer drivers: one module (or package) per brand behind one interface.

`base.PrinterDriver` is the interface (connection or polling, normalised state, commands, files,
starting a file, capabilities, defaults), `registry` finds a printer's driver by the name stored in
`Printer.driver`; `bambu` (MQTT + FTPS) and `prusalink` (HTTP) are the built-in brands, `mqtt` the
network loop shared by MQTT connections. Every driver produces `printers.state.NormalisedState`.
"""
