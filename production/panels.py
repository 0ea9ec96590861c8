"""Production's panel on a catalog version's admin page (catalog.panels): how often its prints came out."""

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from production.selectors import sliced_file_success_rates


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %"


def print_success_for_sliced_file(sliced_file) -> str:
    """Completed over ended prints of each version that uses this file, with the Wilson 95 % interval."""
    found = sliced_file_success_rates(sliced_file=sliced_file)
    if not found:
        return _("No version uses this file.")
    rows = []
    for version, rate in found:
        if not rate.attempts:
            text = format_html("{}", _("not printed yet"))
        else:
            text = format_html(
                "<strong>{}</strong> · {} · {}",
                _percent(rate.rate),
                _("%(completed)s of %(attempts)s prints completed") % {"completed": rate.completed,
                                                                       "attempts": rate.attempts},
                _("95 %% interval %(low)s – %(high)s") % {"low": _percent(rate.low), "high": _percent(rate.high)},
            )
        rows.append((_("%(sku)s version %(number)s") % {"sku": version.variant.sku, "number": version.number}, text))
    return format_html("<table data-print-success>{}</table>",
                       format_html_join("", "<tr><td style='padding-right:.75rem'>{}</td><td>{}</td></tr>", rows))
