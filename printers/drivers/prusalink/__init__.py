"""PrusaLink (Buddy firmware: MK4/MK4S, XL, Core One, MINI; also RPi PrusaLink) over HTTP.

`client`: the HTTP client and `normalise` (status → unified state); `driver`: the PrusaLink
driver the app uses (`printers.drivers.registry`).
"""

from printers.drivers.prusalink.client import DEFAULT_PORT, PrusaLinkClient, RemoteFile, normalise

__all__ = ["DEFAULT_PORT", "PrusaLinkClient", "RemoteFile", "normalise"]
