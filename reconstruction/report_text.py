"""A scan's report and photo advice in plain words, for the portal's scan page.

`report_summary(job)` turns the pipeline's report (photos placed, points, how the size was
found, the mesh, the STEP solid, seconds per stage) into a few sentences per topic; `photo_tips()` says how to
photograph an object, with the limits the service applies.
"""

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from reconstruction.choices import Stage
from reconstruction.pipeline import STAGES

STAGE_LABELS = {**dict(Stage.choices), "densify": gettext_lazy("Dense matching")}
NAMES_SHOWN = 8


def photo_tips() -> list[str]:
    """How to photograph an object for a scan, with the limits the service applies."""
    return [
        _("Take 20 to 50 photos; a scan accepts %(min)s to %(max)s.") % {
            "min": settings.RECONSTRUCTION_MIN_PHOTOS, "max": settings.RECONSTRUCTION_MAX_PHOTOS},
        _("Walk around the object once at its height and once from above; each photo should overlap the "
          "previous one by about two thirds."),
        _("Use even, soft light: no flash, no hard shadows, no direct sun. Keep the object sharp and filling "
          "most of the picture."),
        _("Do not move the object between photos; move around it instead."),
    ]


def _number(value) -> str:
    return number_format(value, force_grouping=True)


def _mm(value) -> str:
    return number_format(round(float(value), 1), decimal_pos=1, force_grouping=True)


def duration(seconds: float) -> str:
    """Seconds as a person says them: "under a second", "42 s", "3 min 5 s", "1 h 12 min"."""
    seconds = round(float(seconds))
    if seconds < 1:
        return _("under a second")
    if seconds < 60:
        return _("%(s)s s") % {"s": seconds}
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": rest} if rest else _("%(m)s min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}


def _names(stored: list[str], originals: dict[str, str]) -> str:
    """Photo names as the customer uploaded them (the pipeline sees them under their content hash)."""
    names = [originals.get(name, name) for name in stored]
    shown = ", ".join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        more = len(names) - NAMES_SHOWN
        shown += " " + ngettext("and %(n)s more", "and %(n)s more", more) % {"n": more}
    return shown


def _photo_sentences(report: dict, originals: dict[str, str]) -> list[str]:
    total, placed = report.get("photos"), report.get("registered_photos")
    sentences = []
    if total is not None and placed is not None:
        if placed >= total:
            sentences.append(ngettext("The one photo was placed.", "All %(total)s photos were placed in 3D.",
                                      total) % {"total": total})
        else:
            sentences.append(ngettext("%(placed)s of %(total)s photo was placed in 3D.",
                                      "%(placed)s of %(total)s photos were placed in 3D.", total)
                             % {"placed": placed, "total": total})
            unplaced = report.get("unplaced_photos") or []
            if unplaced:
                sentences.append(ngettext("Not placed: %(names)s. It did not overlap enough with the others.",
                                          "Not placed: %(names)s. They did not overlap enough with the others.",
                                          len(unplaced)) % {"names": _names(unplaced, originals)})
    elif total is not None:
        sentences.append(ngettext("%(total)s photo was read.", "%(total)s photos were read.", total)
                         % {"total": total})
    poor = report.get("photos_without_detail") or []
    if poor:
        sentences.append(_("Little detail was found in %(names)s (blurred, too dark or plain surfaces).")
                         % {"names": _names(poor, originals)})
    return sentences


def _point_sentences(report: dict) -> list[str]:
    sentences = []
    if report.get("points") is not None:
        sentences.append(ngettext("The placed photos gave %(n)s point on the object's surface.",
                                  "The placed photos gave %(n)s points on the object's surface.", report["points"])
                         % {"n": _number(report["points"])})
    dense = (report.get("densify") or {}).get("points")
    if dense:
        sentences.append(ngettext("Dense matching found %(n)s point more.", "Dense matching found %(n)s points more.",
                                  dense) % {"n": _number(dense)})
    if report.get("meshed_from") == "dense points":
        sentences.append(_("The surface was built from the dense points."))
    elif report.get("meshed_from") == "sparse points":
        sentences.append(_("The surface was built from the first points only, so fine details may be missing."))
    return sentences


def _scale_sentences(job, report: dict) -> list[str]:
    scale = report.get("scale") or {}
    method = str(scale.get("method", ""))
    sentences = []
    if method == "marker sheet":
        used = scale.get("markers_used") or []
        sentences.append(ngettext(
            "The size comes from the marker sheet: %(markers)s marker was found in %(photos)s photos.",
            "The size comes from the marker sheet: %(markers)s markers were found in %(photos)s photos.", len(used),
        ) % {"markers": len(used), "photos": scale.get("photos_with_markers", "?")})
        if scale.get("spread_percent") is not None:
            spread = float(scale["spread_percent"])
            sentences.append(_("The distances between the markers agree to within %(spread)s %%, so the size is "
                               "%(quality)s.") % {
                "spread": number_format(spread, decimal_pos=2),
                "quality": _("very reliable") if spread < 0.5 else _("reliable") if spread < 2 else
                _("only approximate; check the printout measures 50 mm on its ruler")})
        if scale.get("fit_rms_mm") is not None:
            sentences.append(_("The sheet lay flat to within %(mm)s mm.")
                             % {"mm": number_format(float(scale["fit_rms_mm"]), decimal_pos=2)})
    elif method == "known dimension":
        if scale.get("markers") == "not found":
            sentences.append(_("The marker sheet was not found in the photos, so the longest side you entered "
                               "was used instead."))
        sentences.append(_("The model was scaled so that its longest side measures %(mm)s mm, as you entered.")
                         % {"mm": _mm(scale.get("longest_side_mm", job.known_dimension_mm or 0))})
    elif method:
        sentences.append(_("The model was not scaled, so its size is arbitrary. Enter the longest side or use the "
                           "marker sheet to get a true-size model."))
    size = report.get("size_mm")
    if size and len(size) == 3:
        sentences.append(_("It measures %(x)s × %(y)s × %(z)s mm (width × depth × height).")
                         % {"x": _mm(size[0]), "y": _mm(size[1]), "z": _mm(size[2])})
    return sentences


def _mesh_sentences(report: dict) -> list[str]:
    mesh = report.get("mesh") or {}
    watertight = mesh.get("watertight", report.get("watertight"))
    if watertight is None:
        return []
    if watertight:
        sentence = _("The mesh is closed (watertight) and ready to slice.")
        if mesh.get("volume_mm3"):
            sentence += " " + _("It holds %(cm3)s cm³.") % {
                "cm3": number_format(float(mesh["volume_mm3"]) / 1000, decimal_pos=1, force_grouping=True)}
    else:
        sentence = _("The mesh has small openings; most slicers repair them when importing.")
    if mesh.get("faces"):
        sentence += " " + ngettext("It has %(n)s triangle.", "It has %(n)s triangles.", mesh["faces"]) % {
            "n": _number(mesh["faces"])}
    return [sentence]


def _diameters(cylinders: list[dict]) -> str:
    """"Ø 24.02 mm, Ø 6.01 mm ×2": each diameter once, with how many cylinders have it."""
    parts = []
    for cylinder in cylinders:
        text = _("Ø %(d)s mm") % {"d": number_format(float(cylinder["diameter_mm"]), decimal_pos=2,
                                                      force_grouping=True)}
        if cylinder.get("count", 1) > 1:
            text += f" ×{cylinder['count']}"
        parts.append(text)
    return ", ".join(parts)


STEP_ERRORS = {
    "empty": gettext_lazy("No STEP file was made: the mesh is empty."),
    "corrupt": gettext_lazy("No STEP file was made: the mesh file is damaged."),
    "open": gettext_lazy("No STEP file was made: the mesh is not closed, so it does not enclose a solid."),
    "too complex": gettext_lazy("No STEP file was made: the mesh has too many triangles to turn into a solid. "
                                "Download the STL instead, or contact us for a manual conversion."),
    "unavailable": gettext_lazy("No STEP file was made: the CAD converter is not installed on this server."),
    "failed": gettext_lazy("No STEP file was made: the mesh could not be turned into a valid solid."),
}


def step_sentences(step: dict) -> list[str]:
    """What the STEP file holds: "12 planes, 3 cylinders: Ø 24.02 mm, Ø 6.01 mm ×2", or why there is none."""
    if not step:
        return []
    if step.get("error"):
        return [str(STEP_ERRORS.get(step["error"], STEP_ERRORS["failed"]))]
    if step.get("method") == "faceted":
        sentences = [_("No flat faces or cylinders could be fitted, so the STEP file holds a closed faceted solid: "
                       "the mesh's triangles as flat faces. It opens in any CAD program but is hard to edit.")]
    else:
        planes, cylinders = step.get("planes", 0), step.get("cylinders") or []
        n_cylinders = sum(c.get("count", 1) for c in cylinders)
        recognised = ngettext("%(n)s plane", "%(n)s planes", planes) % {"n": planes}
        if n_cylinders:
            recognised += ", " + ngettext("%(n)s cylinder", "%(n)s cylinders", n_cylinders) % {"n": n_cylinders}
            recognised += ": " + _diameters(cylinders)
        sentences = [_("The STEP file is a solid for CAD programs; recognised: %(recognised)s.")
                     % {"recognised": recognised}]
        share = float(step.get("fitted_area_share", 1.0))
        if share < 0.995:
            sentences.append(_("%(percent)s %% of the surface lies on these faces; the rest is kept as small flat "
                               "facets.") % {"percent": number_format(round(share * 100), force_grouping=True)})
    if step.get("simplified_to_faces"):
        sentences.append(_("The mesh was simplified to %(n)s triangles first, so small details may be smoothed.")
                         % {"n": _number(step["simplified_to_faces"])})
    return sentences


def _timing_sentences(job, report: dict) -> list[str]:
    timings = job.stage_timings or report.get("stage_timings") or {}
    timings = {stage: seconds for stage, seconds in timings.items() if isinstance(seconds, (int, float))}
    if not timings:
        return []
    order = [stage for stage, _share in STAGES]  # the database may keep JSON keys in another order
    stages = sorted(timings, key=lambda stage: (order.index(stage) if stage in order else len(order), stage))
    parts = ", ".join(f"{str(STAGE_LABELS.get(stage, stage)).lower()} {duration(timings[stage])}" for stage in stages)
    return [_("The scan took %(total)s: %(parts)s.") % {"total": duration(sum(timings.values())), "parts": parts}]


def report_summary(job) -> list[dict]:
    """The job's report as sentences, one group per topic; empty while there is no report."""
    report = job.report or {}
    if not report:
        return []
    originals = {f"{photo.sha256[:16]}{photo.extension}": photo.original_name for photo in job.photos.all()}
    groups = [
        ("photos", _("Photos"), _photo_sentences(report, originals)),
        ("points", _("Points"), _point_sentences(report)),
        ("scale", _("Size"), _scale_sentences(job, report)),
        ("mesh", _("Mesh"), _mesh_sentences(report)),
        ("step", _("CAD (STEP)"), step_sentences(report.get("step") or {})),
        ("timings", _("Time"), _timing_sentences(job, report)),
    ]
    return [{"key": key, "title": title, "text": " ".join(sentences)} for key, title, sentences in groups if sentences]
