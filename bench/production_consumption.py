"""Filament booked for a failed print: fablab's per-layer method against the two methods peers use.

For every corpus file (settings.FABLAB_CORPUS / slicer) whose plates have layers, each plate's
G-code is replayed move by move with one time model for every method: a move lasts its length
(XYZ, or |E| for a move of the extruder alone) divided by its feed rate; dwell and heating are
not timed. Failures are simulated at 10, 30, 50, 70 and 90 % of that time. The truth is the net
filament the moves pushed up to that instant, in grams (the file's own diameter/density per slot,
as the catalog stores them). Booked grams:

- per layer (fablab): the printer reports the layer in progress, k; the catalog's table gives the
  cumulative grams of layers 1..k (catalog.slicer.extrusion.table_grams);
- per layer + progress (fablab): the printer reports layer k and its percent (the last M73 P before
  the instant where the file has M73, else the elapsed fraction of the time model); layers 1..k-1 are
  booked in full and the part of layer k the percent places on the table's cumulative seconds
  (catalog.slicer.extrusion.table_grams_at, what catalog.selectors.sliced_file_extruded_at does);
- progress × grams: progress is the printer's percent = the last M73 P before the instant where
  the file has M73, else the fraction of the file's bytes sent; times the file's stated grams
  (its own total, or the table's when it states none);
- time ÷ estimate × grams: elapsed time ÷ the file's estimated time × the stated grams. The print
  is taken to last what the slicer estimated, spread over the moves like the time model, so the
  elapsed fraction is the model's time fraction. Files without an estimate are left out of it.

Prints the mean and worst absolute error (g and % of the truth) per method, the same for plates of
100+ layers (booking the whole layer in progress costs up to one layer's grams, a large share of an
early failure on a plate of few layers), and the ratio of the peers' mean error to the per-layer method's.
"""

import math
import re
import statistics
import zipfile
from pathlib import Path

import _setup

_setup.setup_django()

from django.conf import settings  # noqa: E402

from catalog.slicer import read_sliced_file  # noqa: E402
from catalog.slicer.bgcode import iter_gcode  # noqa: E402
from catalog.slicer.extrusion import CONTROL, ExtrusionCounter, table_grams, table_grams_at  # noqa: E402

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
_WORD = re.compile(rb"([A-Z])(-?[\d.]+)")
_M73 = re.compile(rb"^M73\b.*?\bP(\d+(?:\.\d+)?)")


def plate_gcodes(path: Path, info) -> dict[str, bytes]:
    if info.format == "gcode":
        return {"1": path.read_bytes()}
    if info.format == "bgcode":
        with open(path, "rb") as handle:
            return {"1": b"".join(iter_gcode(handle, size=path.stat().st_size, name=path.name))}
    with zipfile.ZipFile(path) as archive:
        if info.format == "ufp":
            name = next(n for n in archive.namelist() if n.lstrip("/") == "3D/model.gcode")
            return {"1": archive.read(name)}
        return {str(plate.index): archive.read(plate.gcode_name) for plate in info.plates if plate.gcode_name}
    return {}


def simulate(data: bytes, table: dict) -> dict:
    """Per move: cumulative time (s), cumulative true grams, layer in progress, M73 percent, byte offset."""
    probe = ExtrusionCounter()
    probe.feed(data)
    probe.finish()
    kind = probe.marker_kind
    factor = dict(zip(table["slots"], table["g_per_mm"], strict=False))
    x = y = z = 0.0
    e_pos = 0.0
    feed = 1500.0
    relative = g91 = False
    tool = 0
    layer = 0
    layer_z = None
    grams = 0.0
    clock = 0.0
    percent = None
    offset = 0
    times, truth, layers, percents, offsets = [], [], [], [], []
    for raw in data.split(b"\n"):
        offset += len(raw) + 1
        line = raw.split(b";", 1)[0].strip() if not raw.lstrip().startswith(b";") else raw.strip()
        if not line:
            continue
        control = CONTROL.match(b"\n" + line)
        if control is not None and control.group("marker") is not None:
            if kind is not None and line.startswith(kind):
                stated = control.group("kissz")
                if stated is None or float(stated) != layer_z:
                    layer += 1
                    layer_z = float(stated) if stated is not None else None
            continue
        if line.startswith(b";"):
            continue
        m73 = _M73.match(line)
        if m73:
            # Bambu start/tool-change G-code also writes M73 P101..P105 (not progress; no printer shows them).
            if float(m73.group(1)) <= 100:
                percent = float(m73.group(1))
            continue
        if control is not None:
            if control.group("tool") is not None and int(control.group("tool")) < 64:
                tool = int(control.group("tool"))
            elif control.group("mmode") is not None:
                relative = control.group("mmode") == b"3"
            elif control.group("g9mode") is not None:
                g91 = control.group("g9mode") == b"1"
            elif control.group("g92") is not None:
                found = re.search(rb"E(-?[\d.]+)", control.group("g92"))
                if found:
                    e_pos = float(found.group(1))
                elif not re.search(rb"[XYZEABC]", control.group("g92")):
                    e_pos = 0.0
            continue
        if not (line[:1] == b"G" and line[1:2] in b"0123" and (len(line) == 2 or line[2:3] in b" XYZEFIJR")):
            continue
        words = {}
        for key, value in _WORD.findall(line[2:]):
            try:
                words[key.decode()] = float(value)
            except ValueError:
                continue
        if words.get("F", 0) > 0:
            feed = words["F"]
        nx = x + words.get("X", 0.0) if g91 else words.get("X", x)
        ny = y + words.get("Y", 0.0) if g91 else words.get("Y", y)
        nz = z + words.get("Z", 0.0) if g91 else words.get("Z", z)
        delta_e = 0.0
        if "E" in words:
            if relative or g91:
                delta_e = words["E"]
            else:
                delta_e = words["E"] - e_pos
                e_pos = words["E"]
        if kind is None and delta_e > 0 and (layer == 0 or abs(nz - layer_z) > 1e-4):
            layer += 1
            layer_z = nz
        distance = math.dist((x, y, z), (nx, ny, nz)) or abs(delta_e)
        clock += distance / (feed / 60.0)
        x, y, z = nx, ny, nz
        grams += delta_e * factor.get(tool, 0.0)
        times.append(clock)
        truth.append(grams)
        layers.append(layer)
        percents.append(percent)
        offsets.append(offset)
    return {"times": times, "truth": truth, "layers": layers, "percents": percents, "offsets": offsets,
            "size": len(data), "has_m73": any(p is not None for p in percents)}


def main() -> None:
    corpus = Path(settings.FABLAB_CORPUS) / "slicer"
    errors = {"per layer + progress (fablab)": [], "per layer (fablab)": [], "progress x grams": [],
              "time / estimate x grams": []}
    plates = 0
    for path in sorted(corpus.iterdir()):
        if path.name in ("expected.json", "MANIFEST.md"):
            continue
        info = read_sliced_file(path)
        tables = info.layer_tables()
        if not tables:
            continue
        gcodes = plate_gcodes(path, info)
        for key, table in tables.items():
            if key not in gcodes:
                continue
            plate = next(p for p in info.plates if str(p.index) == key)
            run = simulate(gcodes[key], table)
            if not run["times"] or run["times"][-1] <= 0:
                continue
            plates += 1
            own_total = sum(table_grams(table, layer=table["layer_count"]))
            stated = plate.fields.get("filament_used_g_total")
            if stated is None and plate.fields.get("filament_used_g"):
                stated = sum(g for g in plate.fields["filament_used_g"] if isinstance(g, int | float))
            total = stated if stated else own_total
            estimate = plate.fields.get("estimated_time_s")
            end = run["times"][-1]
            for fraction in FRACTIONS:
                index = next(i for i, t in enumerate(run["times"]) if t >= fraction * end)
                truth = run["truth"][index]
                if truth <= 0.01:
                    continue
                booked_layer = sum(table_grams(table, layer=run["layers"][index]))
                if run["has_m73"]:
                    progress = (run["percents"][index] or 0.0) / 100
                else:
                    progress = run["offsets"][index] / run["size"]
                # The printer's percent: M73 where the file has it, else the elapsed share of the print.
                if run["has_m73"]:
                    booked_inside = sum(table_grams_at(table, layer=run["layers"][index], percent=progress * 100))
                else:
                    reported = min(run["times"][index] / end, 1.0) * 100
                    booked_inside = sum(table_grams_at(table, layer=run["layers"][index], percent=reported,
                                                       stepped=False))
                rows = [("per layer + progress (fablab)", booked_inside), ("per layer (fablab)", booked_layer),
                        ("progress x grams", progress * total)]
                if estimate:
                    rows.append(("time / estimate x grams", min(run["times"][index] / end, 1.0) * total))
                for method, booked in rows:
                    errors[method].append((abs(booked - truth), abs(booked - truth) / truth * 100, path.name,
                                           table["layer_count"]))
    print(f"plates with layers: {plates}, failures simulated: {len(errors['per layer (fablab)'])}")
    best = "per layer + progress (fablab)"
    print(f"{'method':26} {'mean g':>8} {'worst g':>8} {'mean %':>8} {'median %':>8} {'worst %':>8}")
    means = {}
    for method, rows in errors.items():
        if not rows:
            continue
        grams = [row[0] for row in rows]
        percent = [row[1] for row in rows]
        means[method] = statistics.mean(percent)
        worst = max(rows, key=lambda row: row[1])
        print(f"{method:26} {statistics.mean(grams):8.3f} {max(grams):8.3f} {statistics.mean(percent):8.2f} "
              f"{statistics.median(percent):8.2f} {max(percent):8.2f}   (worst: {worst[2]})")
        tall = [row[1] for row in rows if row[3] >= 100]
        if tall:
            print(f"{'':4}plates of 100+ layers: mean {statistics.mean(tall):.2f} %, worst {max(tall):.2f} % "
                  f"({len(tall)} failures)")
    ours = means.get(best)
    for method, mean in means.items():
        if method != best and ours:
            print(f"{method}: mean % error {mean / ours:.1f}x the per-layer + progress method's")
    print(f"target: per-layer + progress mean error under 1 %: "
          f"{'met' if ours is not None and ours < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
