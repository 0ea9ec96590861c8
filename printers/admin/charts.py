"""Line charts drawn on the server as inline SVG for the printer's admin page (no JavaScript, no CDN).

    svg = line_chart(times=[...], series=[Series("Nozzle", values, "#dc2626")], start=t0, end=t1, unit="°C")

A gap in the data (None) breaks the line instead of drawing a slope across it. Every text is escaped.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 26


@dataclass(frozen=True)
class Series:
    label: str
    values: list
    colour: str
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 6))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 6))
    return ticks


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def line_chart(*, times: list[datetime], series: list[Series], start: datetime, end: datetime, unit: str,
               y_min: float | None = None, y_max: float | None = None, title: str = "") -> SafeString:
    values = [v for s in series for v in s.values if v is not None]
    low = min(values + ([y_min] if y_min is not None else [])) if values else (y_min or 0)
    high = max(values + ([y_max] if y_max is not None else [])) if values else (y_max or 1)
    if y_min is not None:
        low = y_min
    if y_max is not None and high <= y_max:
        high = y_max
    ticks = nice_ticks(low, high)
    low, high = ticks[0], ticks[-1]
    span = (end - start).total_seconds() or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(at: datetime) -> float:
        return LEFT + max(0.0, min(1.0, (at - start).total_seconds() / span)) * plot_w

    def y_of(value: float) -> float:
        return TOP + (1 - (value - low) / ((high - low) or 1)) * plot_h

    parts = [format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'style="width:100%;height:auto;max-width:{}px;font-size:11px" class="printer-chart">',
        WIDTH, HEIGHT, title, WIDTH)]
    if title:
        parts.append(format_html("<title>{}</title>", title))
    for tick in ticks:
        y = y_of(tick)
        parts.append(format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" stroke-opacity=".15"/>'
            '<text x="{}" y="{}" text-anchor="end" fill="currentColor" fill-opacity=".7">{} {}</text>',
            LEFT, WIDTH - RIGHT, f"{y:.1f}", f"{y:.1f}", LEFT - 4, f"{y + 4:.1f}", _number(tick), unit))
    for index in range(5):
        at = start + (end - start) * index / 4
        x = x_of(at)
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"
        parts.append(format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" stroke-opacity=".1"/>'
            '<text x="{}" y="{}" text-anchor="{}" fill="currentColor" fill-opacity=".7">{}</text>',
            f"{x:.1f}", f"{x:.1f}", TOP, TOP + plot_h, f"{x:.1f}", HEIGHT - 8, anchor,
            timezone.localtime(at).strftime("%H:%M")))
    for line in sorted(series, key=lambda s: not s.dashed):  # reference lines below the readings
        path, pen_down = [], False
        for at, value in zip(times, line.values, strict=False):
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x_of(at):.1f} {y_of(value):.1f}")
            pen_down = True
        if len(path) == 1:  # a single sample: a short tick so that it shows
            x, y = path[0][1:].split()
            path.append(f"L{float(x) + 2:.1f} {y}")
        if path:
            parts.append(format_html(
                '<path d="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"{}>'
                "<title>{}</title></path>",
                " ".join(path), line.colour, mark_safe(' stroke-dasharray="6 4"') if line.dashed else "",
                line.label))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(str(p) for p in parts))


def legend(series: list[Series]) -> SafeString:
    items = [format_html(
        '<span style="display:inline-flex;align-items:center;gap:.3rem;margin-right:1rem">'
        '<svg width="18" height="6" aria-hidden="true"><line x1="0" x2="18" y1="3" y2="3" stroke="{}" '
        'stroke-width="2"{}/></svg>{}</span>',
        s.colour, mark_safe(' stroke-dasharray="4 3"') if s.dashed else "", s.label) for s in series]
    return mark_safe("".join(str(i) for i in items)) if items else escape("")
