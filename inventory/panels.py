"""The inventory's panel on a catalog version's page: which spools fit each filament slot."""

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from fablab.html import colour_swatches
from inventory.matching import match_slots


def stock_for_sliced_file(sliced_file) -> str:
    meta = sliced_file.effective_metadata
    if not sliced_file.sliced or not (meta.get("filament_type") or meta.get("filament_colour")):
        return _("The file states no filament slots.")
    results = match_slots(materials=meta.get("filament_type") or [], colours=meta.get("filament_colour") or [],
                          grams_needed=meta.get("filament_used_g") or [])
    rows = []
    for slot in results:
        best = slot.best
        if best is None:
            status = format_html("<span style='color:#b91c1c'>{}</span>", _("nothing suitable in stock"))
        else:
            status = format_html(
                "<span style='color:{}'>{} g {}</span> · {} ({}){}",
                "#15803d" if slot.enough else "#b45309", f"{slot.available_g:.0f}", _("available"),
                best.filament, ", ".join(best.spool_codes[:4]) or "—",
                "" if best.delta_e is None else f" · ΔE {best.delta_e:.1f}",
            )
        needed = "—" if slot.needed_g is None else f"{slot.needed_g} g"
        swatch = colour_swatches([slot.colour or ""])
        rows.append((slot.slot, swatch, slot.material or "—", needed, status))
    return format_html(
        "<table data-stock-match>{}</table>",
        format_html_join("", "<tr><td style='padding-right:.5rem'>{}</td><td>{}</td><td style='padding:0 .5rem'>{}"
                             "</td><td style='padding-right:.75rem'>{}</td><td>{}</td></tr>", rows),
    )
