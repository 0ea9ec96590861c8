"""The printers' admin: the fleet and each printer (`printers`), their jobs and commands (`records`),
the charts on a printer's page (`charts`). Other apps add pages about a printer's files, and panels
(lines and buttons) to the fleet cards and the printer's page, through `printers.panels`, never by
importing this package."""

from printers.admin import printers, records  # noqa: F401  (registers the model admins)
