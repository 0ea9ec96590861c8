"""Printer drivers: one module (or package) per brand, each producing `printers.state.NormalisedState`."""
