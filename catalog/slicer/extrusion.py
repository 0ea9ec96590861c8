"""Cumulative extrusion per layer and per filament slot, computed from a G-code's own moves.

The counter is fed the G-code as it streams past (any chunk size) and keeps, per slot,
the net filament pushed: absolute (M82) and relative (M83, or G91) extrusion, G92
resets, retractions counted negative, purge and wipe moves included (they consume
filament), firmware retraction (G10/G11) ignored because it gives back what it takes.
A slot changes on a tool change `Tn` or a Bambu `M620 Sn` (the Bambu start G-code
loads the first filament with `M620 S0A` alone); `T255`, `T1000` and such are not slots.

Layers follow the slicer's layer-change markers (PrusaSlicer/Orca ';LAYER_CHANGE',
Bambu '; CHANGE_LAYER', Cura/ideaMaker ';LAYER:n', Simplify3D '; layer n, Z = z', Kiri
';; --- layer', IceSL '; <layer>', KISSlicer '; BEGIN_LAYER_OBJECT z=', FlashPrint
';layer:'); a file without markers in its first MARKER_WINDOW bytes is layered by Z:
a layer starts at the first extruding move at a new height. What is extruded before
the first layer (purge line, start G-code) counts towards layer 1 and what comes after
the last marker (end G-code) towards the last layer, so the last layer's cumulative
figure is the whole file's.

Each layer also gets the cumulative print time at its end, by a simple move-time model: a
move (G0-G3) lasts its straight length in X/Y/Z, or |E| for a move of the extruder alone,
divided by the feed rate in force (F, mm/min; 1500 until the file sets one). Dwell, heating
and acceleration are not timed: the table places a printer's progress inside a layer, its
absolute seconds are not a print-time estimate.

Inside a layer, grams do not grow evenly with time (travel, slower perimeters, a purge), so
the table also keeps points inside layers ("knots": move time and cumulative mm per slot),
each where a move that pushed filament ends (never while the filament is retracted): the
first such move after the file's own progress (M73 P) rises, and about one every few seconds
of move time, thinned to at most MAX_KNOTS by doubling the spacing. A printer's progress is
then placed on this finer curve instead of a straight line across the layer.

Speed: most of a G-code is move lines; they are read with one compiled bytes regex per
run of lines between two "control" lines (markers, tool changes, G92, M82/M83, G90/G91),
so Python code runs per control line, not per move.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

MARKER_WINDOW = 4 << 20
MAX_SLOTS = 64
FALLBACK_DIAMETER_MM = 1.75
# The usual density (g/cm³) of each material family when a file states none (datasheet values
# of common brands); anything unknown counts as PLA.
MATERIAL_DENSITY = {
    "PLA": 1.24, "PETG": 1.27, "PET": 1.27, "PCTG": 1.23, "ABS": 1.04, "ASA": 1.07, "HIPS": 1.04, "TPU": 1.21,
    "TPE": 1.21, "FLEX": 1.21, "PA": 1.14, "NYLON": 1.14, "PC": 1.20, "PVA": 1.23, "BVOH": 1.14, "PP": 0.90,
    "PVB": 1.08,
}
FALLBACK_DENSITY = MATERIAL_DENSITY["PLA"]

CONTROL = re.compile(
    rb"\n[ \t]*(?:;(?:"
    rb"(?P<marker>LAYER_CHANGE|LAYER:-?\d+|layer:|; --- layer \d+ \([\d.]+ @ (?P<kiriz>[-\d.]+)\)"
    rb"| (?:CHANGE_LAYER|layer \d+, Z = (?P<s3dz>[-\d.]+)|<layer>|BEGIN_LAYER_OBJECT z=(?P<kissz>[-\d.]+)))"
    rb"|(?:Z:|[ ]Z_HEIGHT: ?)(?P<zval>-?[\d.]+))"
    rb"|(?:T|M620 S)(?P<tool>\d+)(?![\d.])"
    rb"|G9(?:2(?![\d.])(?P<g92>[^;\n]*)|(?P<g9mode>[01])(?![\d.]))"
    rb"|M8(?P<mmode>[23])(?![\d.])"
    rb"|M73(?![\d.])[^;\nP]*P(?P<m73>\d+(?:\.\d+)?)"
    rb")",
)
# Move lines as slicers write them ('G1 X1 Y2 E0.3'): the literal start lets the regex engine jump
# from line to line. Indented lines (Bambu start G-code) or words without spaces ('G1X1E0.3') are
# read by the general patterns, only in the stretches of the file that have them.
_E_MOVE = re.compile(rb"\nG[0-3] [^;\nE]*E(-?[\d.]+)")
_Z_MOVE = re.compile(rb"\nG[0-3] [^;\nZ]*Z(-?[\d.]+)")
_E_MOVE_ANY = re.compile(rb"\n[ \t]*G[0-3](?![\d.])[^;\nE]*E(-?[\d.]+)")
_Z_MOVE_ANY = re.compile(rb"\n[ \t]*G[0-3](?![\d.])[^;\nZ]*Z(-?[\d.]+)")
_UNSPACED = re.compile(rb"\nG[0-3][A-Z]")
_MODE_LINE = re.compile(rb"\n[ \t]*(?:M82|M83|G91)(?![\d.])")
_G92_E = re.compile(rb"E(-?[\d.]+)")
_G92_AXIS = re.compile(rb"[XYZEABC]")
_LINE_E = re.compile(rb"E(-?[\d.]+)")
# A move line's words, for the time model (any order, with or without spaces between words).
_MOVE_LINE = re.compile(rb"\n[ \t]*G[0-3](?![\d.])([^;\n]*)")
_WORD = re.compile(rb"([XYZEF]) *(-?[\d.]+)")
# The same, one row per move line with its F, X, Y, Z, E and F ('' where the line has none): words
# in the orders slicers write them (quick), or in any order.
_MOVE_START = re.compile(rb"\n[ \t]*G[0-3](?![\d.])")
_NUMBER = rb"(-?[\d.]+)"
_MOVE_ORDERED = re.compile(
    rb"\nG[0-3](?: F" + _NUMBER + rb")?(?: X" + _NUMBER + rb")?(?: Y" + _NUMBER + rb")?(?: Z" + _NUMBER + rb")?"
    rb"(?: [IJKRP]-?[\d.]*)*(?: E" + _NUMBER + rb")?"
    rb"(?: [IJKRP]-?[\d.]*)*(?: +F" + _NUMBER + rb")?[ \t]*(?=[;\r\n]|\Z)"
)
_MOVE_AXES = re.compile(
    rb"\n[ \t]*G[0-3](?![\d.])()"
    + b"".join(rb"(?:(?=[^\n;]*?" + letter + rb" *(-?[\d.]+)))?" for letter in (b"X", b"Y", b"Z", b"E", b"F"))
)
DEFAULT_FEED_MM_MIN = 1500.0
TIME_SLICE = 64 << 10  # bytes of moves read into rows at a time
MAX_KNOTS = 256  # time knots kept per plate (besides one per M73 percent)
FIRST_KNOT_SECONDS = 1.0  # the knots' spacing in move time to begin with; doubled whenever there are too many
_LINE_Z = re.compile(rb"Z(-?[\d.]+)")
_MARKER_KINDS = (
    (b";LAYER_CHANGE", "prusa"), (b"; CHANGE_LAYER", "bambu"), (b";LAYER:", "cura"), (b";layer:", "flashprint"),
    (b"; layer ", "simplify3d"), (b";; --- layer", "kiri"), (b"; <layer>", "icesl"),
    (b"; BEGIN_LAYER_OBJECT", "kisslicer"),
)


def _number(raw: bytes) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _sum(values: list[bytes]) -> float:
    try:
        return sum(map(float, values))
    except ValueError:
        return math.fsum(v for v in map(_number, values) if v is not None)


@dataclass
class LayerCounts:
    """What the moves say: per layer its Z and the cumulative mm per slot at the layer's end."""

    source: str  # "markers" | "z"
    z: list[float | None]
    mm: list[list[float]]  # mm[layer][slot], cumulative, slot_count wide
    slot_count: int
    seconds: list[float] | None = None  # cumulative move time at each layer's end
    progress: list[list[float]] | None = None  # [M73 percent, move time] where the file's percent rises
    start_seconds: float = 0.0  # move time before layer 1 begins (start G-code)
    start_mm: list[float] | None = None  # per slot, extruded before layer 1 begins (purge; counted in layer 1)
    knots: list[tuple[float, list[float]]] | None = None  # (move time, cumulative mm per slot) inside layers

    @property
    def layer_count(self) -> int:
        return len(self.z)

    @property
    def totals_mm(self) -> list[float]:
        return list(self.mm[-1]) if self.mm else [0.0] * self.slot_count


class ExtrusionCounter:
    """Feed G-code bytes with feed(); finish() gives LayerCounts, or None when the file has no layers."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._decided: str | None = None  # "markers" | "z"
        self._marker_kind: bytes | None = None
        self._carry = b""
        self.tool = 0
        self.relative = False  # M83
        self.g91 = False
        self.e_pos = 0.0
        self.totals = [0.0]
        self._ends: list[list[float]] = []  # cumulative totals at the end of each finished layer
        self._zs: list[float | None] = []
        self._in_layer = False
        self._layer_z_stated: float | None = None
        self._layer_z_moves: float | None = None
        self.current_z: float | None = None
        self.slots_seen = 1
        self._unspaced = False
        self.clock = 0.0  # seconds of moves so far
        self.position = [0.0, 0.0, 0.0]
        self.feed_rate = DEFAULT_FEED_MM_MIN
        self._seconds: list[float] = []
        self._start: tuple[float, list[float]] = (0.0, [0.0])  # clock and totals where layer 1 begins
        self._progress: list[tuple[float, float]] = []  # (M73 percent, clock) where the percent first rises
        # Knots, (clock, totals), taken as a move that pushes filament ends, so never while the filament is
        # retracted: after the first such move once the M73 percent rises (kept), and about every
        # _knot_step seconds (thinned).
        self._anchors: list[tuple[float, list[float]]] = []
        self._anchor_due = False
        self._knots: list[tuple[float, list[float]]] = []
        self._knot_step = FIRST_KNOT_SECONDS
        self._next_knot = FIRST_KNOT_SECONDS

    # --- feeding ----------------------------------------------------------------------

    @property
    def marker_kind(self) -> bytes | None:
        """The layer-change marker this file's slicer writes (None: layers are told by Z changes)."""
        return self._marker_kind

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._decided is None:
            self._pending += chunk
            if len(self._pending) < MARKER_WINDOW:
                return
            self._decide(bytes(self._pending))
            data, self._pending = bytes(self._pending), bytearray()
        else:
            data = chunk
        data = b"\n" + self._carry + data  # every line, the first too, follows a newline
        cut = data.rfind(b"\n")
        if cut < 0:
            self._carry = data
            return
        self._carry = data[cut + 1:]
        self._process(data, cut + 1)

    def finish(self) -> LayerCounts | None:
        if self._decided is None:
            data = bytes(self._pending)
            self._pending = bytearray()
            self._decide(data)
            data = b"\n" + self._carry + data
        else:
            data = b"\n" + self._carry
        self._carry = b""
        if len(data) > 1:
            if not data.endswith(b"\n"):
                data += b"\n"
            self._process(data, len(data))
        if not self._in_layer:
            return None
        self._close_layer()
        width = max(self.slots_seen, len(self.totals))
        if not any(value > 0 for value in self._ends[-1]):
            return None
        mm = [[round(row[i], 3) if i < len(row) else 0.0 for i in range(width)] for row in self._ends]
        # A slot that pushed filament only after some layers has zeros before; rows are padded above.
        seconds = [round(value, 2) for value in self._seconds]
        progress = [[percent, round(clock, 2)] for percent, clock in self._progress] or None
        start_clock, start_totals = self._start
        start_mm = [round(start_totals[i], 3) if i < len(start_totals) else 0.0 for i in range(width)]
        knots = [(round(clock, 2), [round(totals[i], 3) if i < len(totals) else 0.0 for i in range(width)])
                 for clock, totals in sorted(self._anchors + self._knots, key=lambda knot: knot[0])]
        return LayerCounts(source=self._decided or "z", z=self._zs, mm=mm, slot_count=width, seconds=seconds,
                           progress=progress, start_seconds=round(start_clock, 2), start_mm=start_mm,
                           knots=knots or None)

    def _decide(self, head: bytes) -> None:
        self._unspaced = _UNSPACED.search(head) is not None
        self._decided = "z"
        for match in CONTROL.finditer(head):
            if match.group("marker") is not None:
                text = match.group(0).lstrip()
                self._marker_kind = next(needle for needle, _kind in _MARKER_KINDS if text.startswith(needle))
                self._decided = "markers"
                if self._marker_kind == b";; --- layer" and _MODE_LINE.search(head) is None:
                    self.relative = True  # Kiri:Moto writes relative E and leaves M83 to the printer
                return

    # --- processing -------------------------------------------------------------------

    def _process(self, data: bytes, end: int) -> None:
        if self._decided == "z":
            self._process_lines(data, end)
            return
        position = 0
        for match in CONTROL.finditer(data, 0, end):
            start = match.start()
            if start > position:
                self._moves(data, position, start)
            self._control(match)
            position = match.end()
        if position < end:
            self._moves(data, position, end)

    def _moves(self, data: bytes, start: int, end: int) -> None:
        general = self._unspaced or data.find(b"\n ", start, end) >= 0 or data.find(b"\n\t", start, end) >= 0
        e_move, z_move = (_E_MOVE_ANY, _Z_MOVE_ANY) if general else (_E_MOVE, _Z_MOVE)
        position = start
        while position < end:  # in slices of lines, so that a long stretch of moves is never held as rows
            stop = data.find(b"\n", min(position + TIME_SLICE, end), end)
            stop = end if stop < 0 else stop
            self._time_slice(data, position, stop)  # before the slice's E: its knots add to the totals so far
            self._extrude(e_move.findall(data, position, stop))
            position = stop
        if self._layer_z_stated is None and not self.g91:
            heights = z_move.findall(data, start, end)
            if heights:
                numbers = [z for z in map(_number, heights) if z is not None]
                if numbers:
                    self.current_z = numbers[-1]
                    if self._in_layer:
                        low = min(numbers)
                        if self._layer_z_moves is None or low < self._layer_z_moves:
                            self._layer_z_moves = low

    def _extrude(self, values: list[bytes]) -> None:
        """Add the E words of a stretch of move lines to the current slot."""
        if not values:
            return
        if self.relative or self.g91:
            self._add(_sum(values))
            return
        last = None
        for raw in reversed(values):
            last = _number(raw)
            if last is not None:
                break
        if last is not None:
            self._add(last - self.e_pos)
            self.e_pos = last

    def _knot_due(self) -> float:
        """The clock from which the next extruding move is a knot."""
        return self.clock if self._anchor_due else self._next_knot

    def _add_knots(self, found: list[tuple[float, float]]) -> None:
        """Keep knots found in a stretch of moves: (clock, mm the current slot pushed in the stretch so far),
        before the stretch's extrusion was added to the totals; the time knots thinned to MAX_KNOTS."""
        for clock, pushed in found:
            totals = list(self.totals)
            if self.tool >= len(totals):
                totals.extend([0.0] * (self.tool + 1 - len(totals)))
            totals[self.tool] += pushed
            if self._anchor_due:
                self._anchors.append((clock, totals))
                self._anchor_due = False
            else:
                self._knots.append((clock, totals))
        while len(self._knots) > MAX_KNOTS:
            self._knots = self._knots[1::2]
            self._knot_step *= 2
        if found:
            self._next_knot = found[-1][0] + self._knot_step

    def _time_slice(self, data: bytes, start: int, end: int) -> None:
        rows = None
        if not self.g91:
            # Words in the usual order (X Y Z E F) are read by the quicker pattern, when it took every move.
            rows = _MOVE_ORDERED.findall(data, start, end)
            if len(rows) != len(_MOVE_START.findall(data, start, end)):
                rows = _MOVE_AXES.findall(data, start, end)
        if rows is None or not self._time_rows(rows):
            self._time(_MOVE_LINE.findall(data, start, end))

    def _time_rows(self, rows: list[tuple[bytes, ...]]) -> bool:
        """Advance the clock over move lines given as (F, X, Y, Z, E, F) rows ('' where a line has none);
        False when a number cannot be read (the word loop then does it, skipping what it cannot read)."""
        x, y, z = self.position
        feed = self.feed_rate
        clock = 0.0
        relative_e = self.relative
        e_pos = start_e = self.e_pos
        pushed = 0.0  # relative E: mm pushed so far in these rows (absolute E: e_pos - start_e)
        sqrt = math.sqrt
        knot_at, knot_step, found = self._knot_due() - self.clock, self._knot_step, []
        try:
            for raw_first_f, raw_x, raw_y, raw_z, raw_e, raw_f in rows:
                raw_f = raw_f or raw_first_f
                if raw_f:
                    value = float(raw_f)
                    if value > 0:
                        feed = value
                distance = 0.0
                if raw_x:
                    step = float(raw_x) - x
                    x += step
                    distance = step * step
                if raw_y:
                    step = float(raw_y) - y
                    y += step
                    distance += step * step
                if raw_z:
                    step = float(raw_z) - z
                    z += step
                    distance += step * step
                if raw_e:
                    e = float(raw_e)
                    if relative_e:
                        delta = e
                        pushed += e
                    else:
                        delta = e - e_pos
                        e_pos = e
                else:
                    delta = 0.0
                if distance:
                    clock += sqrt(distance) * 60.0 / feed
                elif delta:
                    clock += abs(delta) * 60.0 / feed
                if clock >= knot_at and delta > 0:
                    found.append((clock, pushed if relative_e else e_pos - start_e))
                    knot_at = clock + knot_step
        except ValueError:
            return False
        if not math.isfinite(clock) or not all(map(math.isfinite, (x, y, z, feed, pushed, e_pos))):
            return False
        self._add_knots([(self.clock + at, mm) for at, mm in found])
        self.clock += clock
        self.position = [x, y, z]
        self.feed_rate = feed
        return True

    def _time(self, lines: list[bytes]) -> None:
        """Advance the clock over move lines (their words after the G code)."""
        if not lines:
            return
        x, y, z = self.position
        feed = self.feed_rate
        clock = self.clock
        relative_xyz = self.g91
        relative_e = self.relative or self.g91
        e_pos = self.e_pos
        sqrt = math.sqrt
        pushed = 0.0
        knot_at, knot_step, found = self._knot_due(), self._knot_step, []
        for words in lines:
            nx, ny, nz = x, y, z
            e = None
            delta = 0.0
            for letter, raw in _WORD.findall(words):
                try:
                    value = float(raw)
                except ValueError:
                    continue
                if letter == b"X":
                    nx = x + value if relative_xyz else value
                elif letter == b"Y":
                    ny = y + value if relative_xyz else value
                elif letter == b"Z":
                    nz = z + value if relative_xyz else value
                elif letter == b"E":
                    e = value
                elif value > 0:
                    feed = value
            dx, dy, dz = nx - x, ny - y, nz - z
            distance = sqrt(dx * dx + dy * dy + dz * dz)
            if e is not None:
                delta = e if relative_e else e - e_pos
                if not relative_e:
                    e_pos = e
                if distance == 0.0:
                    distance = abs(delta)
                if math.isfinite(delta):
                    pushed += delta
            if distance and math.isfinite(distance):
                clock += distance * 60.0 / feed
            if clock >= knot_at and delta > 0:
                found.append((clock, pushed))
                knot_at = clock + knot_step
            x, y, z = nx, ny, nz
        self._add_knots(found)
        self.position = [x, y, z]
        self.feed_rate = feed
        self.clock = clock

    def _add(self, mm: float) -> None:
        tool = self.tool
        totals = self.totals
        if tool >= len(totals):
            totals.extend([0.0] * (tool + 1 - len(totals)))
        totals[tool] += mm

    def _control(self, match: re.Match) -> None:
        group = match.group
        if group("m73") is not None:
            percent = float(group("m73"))
            if (not self._progress or percent > self._progress[-1][0]) and percent <= 100:
                self._progress.append((percent, self.clock))
                self._anchor_due = True
            return
        if group("marker") is not None:
            if not match.group(0).lstrip().startswith(self._marker_kind):
                return
            stated = group("s3dz") or group("kiriz") or group("kissz")
            z = _number(stated) if stated is not None else None
            if group("kissz") is not None and self._in_layer and z is not None and z == self._layer_z_stated:
                return  # KISSlicer: one marker per object on the same layer
            self._new_layer(z)
            return
        if group("zval") is not None:
            if self._in_layer:
                z = _number(group("zval"))
                if z is not None:
                    self._layer_z_stated = z
            return
        if group("tool") is not None:
            self._set_tool(int(group("tool")))
            return
        if group("g9mode") is not None:
            self._set_mode(b"G9" + group("g9mode"))
            return
        if group("mmode") is not None:
            self._set_mode(b"M8" + group("mmode"))
            return
        self._g92(group("g92"))

    def _set_tool(self, tool: int) -> None:
        if tool < MAX_SLOTS:
            self.tool = tool
            if tool + 1 > self.slots_seen:
                self.slots_seen = tool + 1

    def _set_mode(self, mode: bytes) -> None:
        if mode == b"M82":
            self.relative = False
        elif mode == b"M83":
            self.relative = True
        elif mode == b"G91":
            self.g91 = True
        else:
            self.g91 = False

    def _g92(self, arguments: bytes) -> None:
        found = _G92_E.search(arguments)
        if found is not None:
            value = _number(found.group(1))
            if value is not None:
                self.e_pos = value
        elif _G92_AXIS.search(arguments) is None:
            self.e_pos = 0.0  # a bare G92 zeroes every axis

    def _new_layer(self, z: float | None) -> None:
        if self._in_layer:
            self._close_layer()
        else:
            self._start = (self.clock, list(self.totals))
        self._in_layer = True
        self._layer_z_stated = z
        self._layer_z_moves = None

    def _close_layer(self) -> None:
        self._ends.append(list(self.totals))
        self._seconds.append(self.clock)
        z = self._layer_z_stated
        if z is None:
            z = self._layer_z_moves if self._layer_z_moves is not None else self.current_z
        self._zs.append(round(z, 3) if z is not None else None)

    # --- files without layer markers: a line loop, layers by Z ---------------------------

    def _process_lines(self, data: bytes, end: int) -> None:
        for line in data[:end].split(b"\n"):
            line = line.strip()
            if not line or line[0] == 59:  # ';'
                continue
            head = line[:1]
            if head == b"G":
                self._line_move(line)
            elif head == b"T" or head == b"M":
                match = CONTROL.match(b"\n" + line)
                if match is not None and match.group("marker") is None and match.group("zval") is None:
                    self._control(match)

    def _line_move(self, line: bytes) -> None:
        code = line.split(b";", 1)[0]
        if code[1:3] in (b"92",):
            self._g92(code[3:])
            return
        if code[1:3] in (b"90", b"91"):
            self._set_mode(code[:3])
            return
        if len(code) < 2 or code[1:2] not in b"0123" or (len(code) > 2 and code[2:3] in b"0123456789."):
            return
        before = self.clock
        self._time([code[2:]])
        z_found = _LINE_Z.search(code)
        if z_found is not None and not self.g91:
            z = _number(z_found.group(1))
            if z is not None:
                self.current_z = z
        e_found = _LINE_E.search(code)
        if e_found is None:
            return
        e = _number(e_found.group(1))
        if e is None:
            return
        delta = e if (self.relative or self.g91) else e - self.e_pos
        if not (self.relative or self.g91):
            self.e_pos = e
        if delta > 0 and self.current_z is not None and (
                not self._in_layer or abs(self.current_z - self._layer_z_stated) > 1e-4):
            moved, self.clock = self.clock - before, before  # this move is the new layer's first
            self._new_layer(self.current_z)
            self.clock += moved
        self._add(delta)


# --- grams ---------------------------------------------------------------------------------


def material_density(filament_type: str | None) -> float | None:
    """The usual density of a material family ('PLA', 'PETG-CF', 'PLA+', 'Generic ABS'), None if unknown."""
    if not filament_type:
        return None
    words = re.split(r"[^A-Z]+", str(filament_type).upper())
    for word in words:
        if word in MATERIAL_DENSITY:
            return MATERIAL_DENSITY[word]
    return None


def layer_table(counts: LayerCounts, *, diameters=None, densities=None, types=None) -> dict:
    """The stored form: per layer Z; per used slot its cumulative mm per layer and its grams per mm.

    Columns are kept only for slots that pushed filament ('slots' names them), so a 2,000-layer
    16-slot file costs ~9 bytes per layer per slot used; 'knots' holds the points inside layers
    (move time, and per used slot the cumulative mm), a few hundred at most. Grams = mm × π(d/2)² × density; a slot
    without a stated diameter is 1.75 mm, one without a stated density takes its material's
    usual density (MATERIAL_DENSITY, PLA when unknown) and is listed in 'assumed_density'.
    """
    width = counts.slot_count
    used = [slot for slot in range(width) if any(row[slot] for row in counts.mm)]
    factors, assumed, diameter_out, density_out = [], [], [], []
    for slot in used:
        diameter = _slot_value(diameters, slot)
        if diameter is None or not 0.5 <= diameter <= 5:
            diameter = FALLBACK_DIAMETER_MM
        density = _slot_value(densities, slot)
        if density is not None and density > 100:  # kg/m³ (ideaMaker)
            density = density / 1000
        if density is None or not 0.3 <= density <= 5:
            density = material_density(_slot_text(types, slot)) or FALLBACK_DENSITY
            assumed.append(slot)
        diameter_out.append(diameter)
        density_out.append(density)
        factors.append(math.pi * (diameter / 2) ** 2 * density / 1000)
    return {
        "source": counts.source,
        "layer_count": counts.layer_count,
        "slot_count": width,
        "z": counts.z,
        "slots": used,
        "mm": [[row[slot] for row in counts.mm] for slot in used],
        "seconds": counts.seconds,
        "progress": counts.progress,
        "start_seconds": counts.start_seconds,
        "start_mm": [counts.start_mm[slot] for slot in used] if counts.start_mm else None,
        "knots": {"seconds": [clock for clock, _mm in counts.knots],
                  "mm": [[mm[slot] for _clock, mm in counts.knots] for slot in used]} if counts.knots else None,
        "g_per_mm": [round(f, 9) for f in factors],
        "diameter_mm": diameter_out,
        "density_g_cm3": density_out,
        "assumed_density": assumed,
    }


def _slot_value(values, slot: int) -> float | None:
    if values is None:
        return None
    if isinstance(values, int | float):
        return float(values)
    if isinstance(values, str):
        values = [part for part in re.split(r"[,;|]", values)]
    if not isinstance(values, list | tuple) or not values:
        return None
    value = values[slot] if slot < len(values) else values[-1] if len(values) == 1 else None
    if isinstance(value, str):
        value = _number(value.strip().encode()) if value.strip() else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _slot_text(values, slot: int) -> str | None:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not values:
        return None
    value = values[slot] if slot < len(values) else values[0]
    return value if isinstance(value, str) else None


def table_grams(table: dict, *, layer: int) -> list[float]:
    """Grams per slot (slot_count wide) extruded through layer `layer` (1-based) of a stored table."""
    width = table.get("slot_count") or 0
    grams = [0.0] * width
    count = table.get("layer_count") or 0
    if layer <= 0 or count == 0:
        return grams
    index = min(layer, count) - 1
    for slot, column, factor in zip(table["slots"], table["mm"], table["g_per_mm"], strict=False):
        grams[slot] = round(column[index] * factor, 3)
    return grams


def table_progress_span(table: dict, *, percent: float, stepped: bool = True) -> tuple[float, float] | None:
    """The stretch of move time (seconds from, to) in which a printer shows `percent` (0-100) of a
    plate's print; None when the table has no seconds.

    Where the file states its own progress (M73 P lines, the slicer's time model that the printer
    displays), a whole percent (`stepped`: as M73 states it, rounded down) lies anywhere between the
    moves where the file's percent reaches it and where it rises again; any other percent is placed in
    proportion between those points. Elsewhere the percent is a share of the table's own move time.
    A percent within a millionth of a whole one (57.000000001, a share times 100) is that whole one.
    """
    seconds = table.get("seconds")
    if not seconds or not seconds[-1] > 0:
        return None
    total = seconds[-1]
    percent = min(max(percent, 0.0), 100.0)
    anchors = table.get("progress") or []
    if len(anchors) < 2:
        instant = percent / 100 * total
        return instant, instant
    whole = stepped and abs(percent - round(percent)) < 1e-6
    if whole:
        percent = float(round(percent))
    points = [(float(p), min(float(t), total)) for p, t, *_rest in anchors]
    if points[-1][0] < 100:
        points.append((100.0, total))
    if percent < points[0][0]:
        return (0.0, points[0][1]) if stepped else (points[0][1] * percent / points[0][0],) * 2
    for (low, start), (high, end) in zip(points, points[1:], strict=False):
        if low <= percent < high:
            if whole and high - low >= 1:
                return start, end
            instant = start + (percent - low) / (high - low) * (end - start)
            return instant, instant
    return total, total


def _layer_span(table: dict, layer: int) -> tuple[float, float, list[float], list[float]]:
    """Layer `layer`'s move time (from, to) and grams per slot at its start and end; layer 0 is the start
    G-code before layer 1 (which the cumulative figures count in layer 1)."""
    seconds = table["seconds"]
    width = table.get("slot_count") or 0
    start_seconds = table.get("start_seconds") or 0.0
    start_grams = [0.0] * width
    for slot, column, factor in zip(table["slots"], table.get("start_mm") or [], table["g_per_mm"], strict=False):
        start_grams[slot] = column * factor
    if layer == 0:
        return 0.0, start_seconds, [0.0] * width, start_grams
    through = table_grams(table, layer=layer)
    if layer == 1:
        return start_seconds, seconds[0], start_grams, through
    return seconds[layer - 2], seconds[layer - 1], table_grams(table, layer=layer - 1), through


def _layer_shape(table: dict, begin: float, end: float, before: list[float],
                 through: list[float]) -> tuple[list[float], list[float]]:
    """How far through its grams a layer is over its move time: points (seconds, share 0..1) from
    (begin, 0) to (end, 1), never falling, linear in between.

    The shares come from the table's knots inside the layer (the grams pushed by then, of all slots
    together, as a share of the layer's); a table without knots there gives a straight line. A
    knot above the layer's end (the filament retracted when the layer ended) counts as its end.
    """
    times, shares = [begin], [0.0]
    knots = table.get("knots") or {}
    columns = knots.get("mm") or []
    change = sum(through) - sum(before)
    if len(columns) == len(table["slots"]) and abs(change) > 1e-9:
        factors = table["g_per_mm"]
        first = sum(before)
        for index, at in enumerate(knots.get("seconds") or []):
            if not begin < at < end:
                continue
            grams = sum(column[index] * factor for column, factor in zip(columns, factors, strict=False))
            times.append(float(at))
            shares.append(min(max((grams - first) / change, shares[-1]), 1.0))
    times.append(end)
    shares.append(1.0)
    return times, shares


def _share_at(times: list[float], shares: list[float], instant: float) -> float:
    index = bisect.bisect_right(times, instant)
    if index == 0:
        return shares[0]
    if index == len(times):
        return shares[-1]
    t0, t1 = times[index - 1], times[index]
    if t1 <= t0:
        return shares[index]
    return shares[index - 1] + (instant - t0) / (t1 - t0) * (shares[index] - shares[index - 1])


def _mean_share(times: list[float], shares: list[float], low: float, high: float) -> float:
    """The share averaged over the move time from `low` to `high`: the expected share of an instant that
    lies anywhere in between."""
    if high - low <= 1e-9:
        return _share_at(times, shares, low)
    xs = [low, *(t for t in times if low < t < high), high]
    ys = [_share_at(times, shares, x) for x in xs]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / (high - low)


def table_grams_at(table: dict, *, layer: int, percent: float | None = None, stepped: bool = True) -> list[float]:
    """Grams per slot booked when the printer is on layer `layer` and shows `percent` of the print:
    layers 1..layer-1 in full plus the part of `layer` done by then.

    The percent gives a stretch of the table's move time (table_progress_span). Where it meets the
    layer, the printer stopped somewhere in the overlap: the share of the layer's grams booked is its
    mean over the overlap (a whole M73 percent is a lower bound, so this lies about half a step above
    it, kept inside the layer). Where the percent misses the layer, the layer's start or end,
    whichever is nearer. The share follows the table's knots inside the layer (_layer_shape), else
    grows evenly over the layer's time. Layer 0 is the start G-code. Without a percent, or with a
    table that has no seconds (stored before they were kept), the whole layer in progress is booked
    (layers 1..layer, as table_grams); a layer beyond the last books the totals.
    """
    count = table.get("layer_count") or 0
    if percent is None or not 0 <= layer <= count:
        return table_grams(table, layer=layer)
    span = table_progress_span(table, percent=percent, stepped=stepped)
    seconds = table.get("seconds")
    if span is None or len(seconds) != count:
        return table_grams(table, layer=layer)
    begin, end, before, through = _layer_span(table, layer)
    low, high = max(span[0], begin), min(span[1], end)
    if low > high:
        low = high = begin if span[1] < begin else end
    if end > begin:
        times, shares = _layer_shape(table, begin, end, before, through)
        within = _mean_share(times, shares, low, high)
    else:
        within = 1.0
    return [round(a + within * (b - a), 3) for a, b in zip(before, through, strict=True)]
