"""Extension point: apps further down the chain add panels to a version's admin page.

The catalog may not depend on inventory or production (they depend on it), so they
register here instead: `register_version_panel(title, render)` where
`render(sliced_file) -> str (safe HTML)`. inventory registers "Stock for this file".
"""

from collections.abc import Callable

_PANELS: list[tuple[str, Callable]] = []


def register_version_panel(title, render: Callable) -> None:
    if all(existing is not render for _title, existing in _PANELS):
        _PANELS.append((title, render))


def version_panels() -> list[tuple[str, Callable]]:
    return list(_PANELS)
