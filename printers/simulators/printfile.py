"""What a simulated printer reads from a file it is told to print: its time, its layers and its progress marks.

A printer's firmware does not compute a print's time; it reads what the slicer wrote into the file and
reports it while it runs the G-code:

- `M73 P<percent> R<minutes>` lines carry the progress and the remaining time (Prusa and Bambu
  firmware show exactly these numbers); `M73 Q.. S..` (silent mode) and `M73.2` are not progress;
- layer changes are comment markers (`;LAYER_CHANGE` PrusaSlicer, `; CHANGE_LAYER` Bambu Studio and
  OrcaSlicer, `;LAYER:n` Cura) and, on Bambu printers, `M73 L<n>` (the layer the printer reports);
- the total time is the slicer's estimate (`; estimated printing time (normal mode) = 1h 2m 3s`,
  `; total estimated time: 18m 15s`, `;TIME:1234`), the layer count that of the markers (Bambu files
  also state `; total layer number: N`).

`read_print_file(name, data, plate=1)` reads plain G-code (`.gcode`), a sliced 3MF (`.gcode.3mf`/`.3mf`,
its `Metadata/plate_<plate>.gcode`) and binary G-code (`.bgcode`: its G-code blocks when stored or
deflated without MeatPack; otherwise — heatshrink-compressed or MeatPack-encoded blocks, as PrusaSlicer
writes them by default — the printer metadata's time, and `max_layer_z / layer_height` layers). It
gives a `PrintPlan`: where on the print's clock (seconds at the slicer's speed) each layer begins and
what the file's progress lines say there. `PrintRun` walks a plan for one job and stops it at a layer
to fail or cancel it. Nothing here imports the rest of the app: a simulator reads its files itself.

A file that is not a print file raises `PrintFileError` with the reason.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

MAX_GCODE_BYTES = 256 * 1024 * 1024  # the G-code a simulated printer agrees to read (inflated)
DEFAULT_SECONDS = 600.0

_TEMPERATURE = re.compile(r"(M10[49]|M1[49]0)\s[^;]*?S(\d+(?:\.\d+)?)", re.IGNORECASE)
_DURATION = re.compile(r"(?:(\d+)d\s*)?(?:(\d+)h\s*)?(?:(\d+)m\s*)?(?:(\d+)s)?")
_TIME_COMMENTS = (
    re.compile(r";\s*estimated printing time \(normal mode\)\s*=\s*(.+)$"),
    re.compile(r";\s*total estimated time:\s*([^;]+)"),
    re.compile(r";\s*estimated printing time\s*[:=]\s*(.+)$"),
)
_CURA_TIME = re.compile(r";TIME:(\d+(?:\.\d+)?)\s*$")
_STATED_LAYERS = re.compile(r";\s*total layer number:\s*(\d+)")


class PrintFileError(ValueError):
    """The file is not something a printer can print; the message says why."""


def parse_duration(text: str) -> float | None:
    """'1h 2m 3s', '18m 15s', '1d 0h 2m 0s', '40s' → seconds; None when it is no duration."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


@dataclass(frozen=True)
class Mark:
    """An `M73 P R` progress line: where the print's clock is when the printer reaches it."""

    seconds: float
    percent: float
    remaining_minutes: float | None


@dataclass(frozen=True)
class Progress:
    percent: float  # what the printer shows: the last progress line passed
    remaining_seconds: float  # print time left (at the slicer's speed)
    layer: int  # layers begun, 0 before the first
    total_layers: int


@dataclass(frozen=True)
class PrintPlan:
    """A print as its file describes it, on a clock of print seconds at the slicer's speed."""

    total_seconds: float
    layer_starts: tuple[float, ...] = ()  # when layer 1, 2, ... begins
    marks: tuple[Mark, ...] = ()  # the file's progress lines, in order
    source: str = "gcode"  # "gcode": read from the G-code; "metadata": from the file's metadata only
    nozzle_c: float | None = None  # the temperatures the file heats to before its first layer
    bed_c: float | None = None
    _mark_times: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mark_times", tuple(mark.seconds for mark in self.marks))

    @property
    def layer_count(self) -> int:
        return len(self.layer_starts)

    @classmethod
    def uniform(cls, total_seconds: float, layers: int = 0, *, source: str = "metadata") -> PrintPlan:
        """Layers spread evenly over the time, progress in proportion to it (no progress lines)."""
        total = max(1.0, float(total_seconds))
        return cls(total_seconds=total, layer_starts=tuple(total * i / layers for i in range(max(0, layers))),
                   source=source)

    def layer_start(self, layer: int) -> float:
        """When layer `layer` (1-based) begins on the print's clock."""
        if not 1 <= layer <= self.layer_count:
            raise ValueError(f"layer {layer} is not in this file (1 … {self.layer_count})")
        return self.layer_starts[layer - 1]

    def at(self, seconds: float) -> Progress:
        """What the printer reports `seconds` into the print (at the slicer's speed)."""
        if seconds >= self.total_seconds:
            return Progress(percent=100.0, remaining_seconds=0.0, layer=self.layer_count,
                            total_layers=self.layer_count)
        seconds = max(0.0, seconds)
        layer = bisect.bisect_right(self.layer_starts, seconds)
        percent, remaining = 100.0 * seconds / self.total_seconds, self.total_seconds - seconds
        if self.marks:
            index = bisect.bisect_right(self._mark_times, seconds) - 1
            percent = self.marks[index].percent if index >= 0 else 0.0
            if index >= 0 and self.marks[index].remaining_minutes is not None:
                remaining = self.marks[index].remaining_minutes * 60
        return Progress(percent=min(100.0, percent), remaining_seconds=max(0.0, remaining), layer=layer,
                        total_layers=self.layer_count)


class PrintRun:
    """One job walking its plan: `advance(print_seconds)` moves it on and says when it ends.

    `fail_at_layer` / `cancel_at_layer`: when the print reaches that layer's start it stops there; the
    printer reports that layer once more, then the next `advance` answers "failed" / "cancelled".
    A layer beyond the file's last is never reached.
    """

    def __init__(self, plan: PrintPlan, *, fail_at_layer: int | None = None, cancel_at_layer: int | None = None):
        self.plan = plan
        self.position = 0.0
        self.stop_layer: int | None = None
        self.stop_outcome = ""
        self._stopping = False
        self._stopped_layer = 0
        self.outcome = ""  # "finished", "failed", "cancelled" once it ended
        if fail_at_layer is not None:
            self.stop_at(fail_at_layer, "failed")
        elif cancel_at_layer is not None:
            self.stop_at(cancel_at_layer, "cancelled")

    def stop_at(self, layer: int, outcome: str) -> None:
        if outcome not in ("failed", "cancelled"):
            raise ValueError(f"unknown outcome {outcome!r}")
        if int(layer) < 1:
            raise ValueError("the layer to stop at counts from 1")
        self.stop_layer, self.stop_outcome = int(layer), outcome

    def advance(self, print_seconds: float) -> str:
        """Move on by `print_seconds`; "" while printing, else the outcome (once)."""
        if self.outcome:
            return ""
        if self._stopping:
            self.outcome = self.stop_outcome
            return self.outcome
        target = self.position + max(0.0, print_seconds)
        if self.stop_layer is not None and self.stop_layer <= self.plan.layer_count:
            limit = self.plan.layer_start(self.stop_layer)
            if target >= limit:
                # It stops where that layer begins; a layer already behind it stops it where it is.
                self._stopped_layer = self.stop_layer if self.position <= limit else self.plan.at(self.position).layer
                self.position = max(self.position, limit)
                self._stopping = True
                return ""
        self.position = target
        if self.position >= self.plan.total_seconds:
            self.outcome = "finished"
            return self.outcome
        return ""

    def progress(self) -> Progress:
        progress = self.plan.at(self.position)
        if self._stopping:  # stopped at the start of that layer (layers may begin at the same moment)
            return dataclasses.replace(progress, layer=self._stopped_layer)
        return progress


# --- reading files --------------------------------------------------------------------------------------


def _layer_marker(line: str) -> bool:
    return (line.startswith((";LAYER_CHANGE", "; CHANGE_LAYER", ";CHANGE_LAYER"))
            or (line.startswith(";LAYER:") and line[7:].strip().lstrip("-").isdigit()))


def plan_from_gcode(text: str, *, stated_seconds: float | None = None) -> PrintPlan:
    """Read G-code text: its time, layer changes and progress lines."""
    total = stated_seconds
    stated_layers = None
    events: list[tuple[int, str, tuple]] = []  # (offset, kind, values)
    offset = 0
    layer = 0
    nozzle = bed = None
    for raw in text.splitlines():
        line = raw.strip()
        start = offset
        offset += len(raw) + 1
        if not line:
            continue
        if line[0] == ";":
            if _layer_marker(line):
                layer += 1
                events.append((start, "layer", (layer,)))
            elif total is None or stated_layers is None:
                if total is None:
                    for pattern in _TIME_COMMENTS:
                        found = pattern.search(line)
                        if found and (value := parse_duration(found.group(1).split(";")[0])) is not None:
                            total = value
                            break
                    else:
                        cura = _CURA_TIME.match(line)
                        if cura:
                            total = float(cura.group(1))
                if stated_layers is None and (found := _STATED_LAYERS.match(line)):
                    stated_layers = int(found.group(1))
            continue
        command = line.split(";", 1)[0].split()
        code = command[0].upper()
        if code == "M73":
            values = {word[0].upper(): word[1:] for word in command[1:] if len(word) > 1}
            try:
                if "L" in values:
                    number = int(float(values["L"]))
                    if number > layer:  # the printer's own layer count, ahead of the comment markers
                        layer = number
                        events.append((start, "layer", (layer,)))
                elif "P" in values:
                    remaining = float(values["R"]) if "R" in values else None
                    events.append((start, "m73", (float(values["P"]), remaining)))
            except ValueError:
                continue  # a malformed progress line: the firmware ignores it too
        elif layer == 0 and code in ("M104", "M109", "M140", "M190"):
            found = _TEMPERATURE.match(line)
            if found and float(found.group(2)) > 0:
                if code in ("M104", "M109"):
                    nozzle = float(found.group(2))
                else:
                    bed = float(found.group(2))
    m73 = [(position, values) for position, kind, values in events if kind == "m73"]
    if total is None and m73 and m73[0][1][1] is not None:
        total = m73[0][1][1] * 60  # the first line's remaining minutes
    if total is None or total <= 0:
        total = DEFAULT_SECONDS
    end = max(offset, 1)
    # Each progress line sits where its percentage of the time has passed; everything between two lines is
    # placed by its position in the file (the G-code runs at a steady rate in between).
    anchors = [(0, 0.0)] + [(position, values[0] / 100 * total) for position, values in m73] + [(end, total)]
    anchor_offsets = [position for position, _seconds in anchors]

    def seconds_at(position: int) -> float:
        index = bisect.bisect_right(anchor_offsets, position) - 1
        index = min(max(index, 0), len(anchors) - 2)
        (a_pos, a_sec), (b_pos, b_sec) = anchors[index], anchors[index + 1]
        if b_pos <= a_pos:
            return a_sec
        return a_sec + (b_sec - a_sec) * (position - a_pos) / (b_pos - a_pos)

    marks = []
    last = 0.0
    for _position, values in m73:
        seconds = max(last, values[0] / 100 * total)
        marks.append(Mark(seconds=seconds, percent=values[0], remaining_minutes=values[1]))
        last = seconds
    starts = []
    last = 0.0
    for position, kind, _values in events:
        if kind == "layer":
            last = max(last, seconds_at(position))
            starts.append(last)
    if not starts and stated_layers:
        return PrintPlan.uniform(total, stated_layers, source="gcode")
    return PrintPlan(total_seconds=total, layer_starts=tuple(starts), marks=tuple(marks), source="gcode",
                     nozzle_c=nozzle, bed_c=bed)


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise PrintFileError("the file holds binary data, not G-code text")
    return data.decode("utf-8", errors="replace")


def _read_3mf(data: bytes, plate: int) -> PrintPlan:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PrintFileError("a .3mf file must be a ZIP archive") from None
    with archive:
        entry = f"Metadata/plate_{plate}.gcode"
        try:
            info = archive.getinfo(entry)
        except KeyError:
            plates = sorted(n for n in archive.namelist() if re.fullmatch(r"Metadata/plate_\d+\.gcode", n))
            if not plates:
                raise PrintFileError("the 3MF is not sliced: it holds no Metadata/plate_N.gcode") from None
            raise PrintFileError(f"the 3MF has no plate {plate} ({', '.join(plates)})") from None
        if info.file_size > MAX_GCODE_BYTES:
            raise PrintFileError(f"{entry} is larger than {MAX_GCODE_BYTES // (1024 * 1024)} MiB")
        try:
            return plan_from_gcode(_decode(archive.read(entry)))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise PrintFileError(f"{entry} cannot be read: {exc}") from None


# Binary G-code (libbgcode): file header, then blocks of type/compression/size(s), parameters, data, CRC32.
_BGCODE_MAGIC = b"GCDE"
_FILE_METADATA, _GCODE, _SLICER_METADATA, _PRINTER_METADATA, _PRINT_METADATA, _THUMBNAIL = range(6)
_NO_COMPRESSION, _DEFLATE = 0, 1
_NO_ENCODING = 0


def _ini(data: bytes) -> dict[str, str]:
    values = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _read_bgcode(data: bytes) -> PrintPlan:
    if len(data) < 10 or data[:4] != _BGCODE_MAGIC:
        raise PrintFileError("a .bgcode file starts with GCDE")
    _version, checksum = struct.unpack_from("<IH", data, 4)
    checksum_size = 4 if checksum == 1 else 0
    position = 10
    gcode: list[str] = []
    readable = True
    metadata: dict[str, str] = {}
    while position < len(data):
        if position + 8 > len(data):
            raise PrintFileError(f"a block header at byte {position} is cut off")
        block_type, compression, size = struct.unpack_from("<HHI", data, position)
        header = 8
        packed_size = size
        if compression != _NO_COMPRESSION:
            if position + 12 > len(data):
                raise PrintFileError(f"a block header at byte {position} is cut off")
            packed_size = struct.unpack_from("<I", data, position + 8)[0]
            header = 12
        params_size = 6 if block_type == _THUMBNAIL else 2
        start = position + header + params_size
        end = start + packed_size
        if end + checksum_size > len(data):
            raise PrintFileError(f"the block at byte {position} runs past the end of the file")
        encoding = struct.unpack_from("<H", data, position + header)[0] if params_size == 2 else 0
        payload = data[start:end]
        if block_type in (_GCODE, _PRINTER_METADATA, _PRINT_METADATA):
            if compression == _DEFLATE:
                try:
                    payload = zlib.decompress(payload)
                except zlib.error as exc:
                    raise PrintFileError(f"a deflated block at byte {position} cannot be inflated: {exc}") from None
            elif compression != _NO_COMPRESSION:
                payload = None  # heatshrink: the printer's own decoder; here the metadata is enough
            if block_type == _GCODE:
                if payload is None or encoding != _NO_ENCODING:
                    readable = False
                elif readable:
                    gcode.append(payload.decode("utf-8", errors="replace"))
                    if sum(len(chunk) for chunk in gcode) > MAX_GCODE_BYTES:
                        raise PrintFileError(f"the G-code is larger than {MAX_GCODE_BYTES // (1024 * 1024)} MiB")
            elif payload is not None:
                for key, value in _ini(payload).items():
                    metadata.setdefault(key, value)
        elif block_type > _THUMBNAIL:
            raise PrintFileError(f"unknown block type {block_type} at byte {position}")
        position = end + checksum_size
    stated = parse_duration(metadata.get("estimated printing time (normal mode)", ""))
    if readable and gcode:
        return plan_from_gcode("".join(gcode), stated_seconds=stated)
    if stated is None:
        raise PrintFileError("the G-code blocks are compressed in a way this printer cannot read and the "
                             "metadata states no printing time")
    layers = 0
    try:
        top, height = float(metadata.get("max_layer_z", "")), float(metadata.get("layer_height", ""))
        if top > 0 and height > 0:
            layers = max(1, round(top / height))
    except ValueError:
        pass
    return PrintPlan.uniform(stated, layers, source="metadata")


def read_print_file(name: str, data: bytes, *, plate: int = 1) -> PrintPlan:
    """The plan of a print file, by its content (its name only breaks ties)."""
    if not data:
        raise PrintFileError("the file is empty")
    lowered = name.lower()
    if data[:4] == _BGCODE_MAGIC:
        return _read_bgcode(data)
    if data[:2] == b"PK":
        return _read_3mf(data, plate)
    if lowered.endswith((".3mf", ".bgcode")):
        raise PrintFileError(f"{name} is not a {'ZIP archive' if lowered.endswith('.3mf') else 'binary G-code file'}")
    if len(data) > MAX_GCODE_BYTES:
        raise PrintFileError(f"the G-code is larger than {MAX_GCODE_BYTES // (1024 * 1024)} MiB")
    return plan_from_gcode(_decode(data))


def plate_from_param(param: str | None) -> int:
    """The plate a Bambu `project_file` names: "Metadata/plate_2.gcode" → 2 (1 when it names none)."""
    found = re.search(r"plate_(\d+)\.gcode", param or "")
    return int(found.group(1)) if found else 1


def minutes(seconds: float) -> int:
    """Remaining time as Bambu printers report it, in whole minutes (a started minute counts)."""
    return int(math.ceil(max(0.0, seconds) / 60 - 1e-9))
