"""Small HTML fragments and texts the admin pages of several apps share."""

from collections.abc import Iterable

from django.utils.html import format_html_join
from django.utils.safestring import SafeString


def colour_swatches(colours: Iterable[str], *, size: str = ".9rem") -> SafeString:
    """Round colour dots with the hex as tooltip; empty entries are skipped.

    Inline styles, because Tailwind classes unfold does not already use are not compiled.
    """
    return format_html_join(
        "", '<span title="{}" style="display:inline-block;width:{};height:{};border-radius:9999px;'
            'border:1px solid rgba(0,0,0,.2);margin-right:2px;background:{}"></span>',
        ((colour, size, size, colour) for colour in colours if colour),
    )


def duration_text(seconds: int | float | None) -> str:
    """A duration as the admin shows it: "42 min", "3 h 05 min"; "—" when unknown."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"
