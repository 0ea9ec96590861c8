"""Slicer metadata extraction: accuracy on the real corpus, time per file, 100 MB files.

1. Reads every file of the corpus (settings.FABLAB_CORPUS / slicer) and scores the
   result against expected.json the way its schema says (skip null expected values;
   numbers within 1 % or 0.011, strings exact, slicer name case-insensitive): the 12
   core fields of the peer comparison, then all schema fields.
2. Prints the peer figure from reference/slicer-formats.md (Moonraker, 75.1 % on the
   12 core fields, 37-file corpus) and our ratio to it. When MOONRAKER_METADATA names
   Moonraker's extractor (moonraker/components/file_manager/metadata.py, run with this
   Python, which needs Pillow), it is also run on today's corpus and scored the way the
   reference did: sliced files it can take (G-code, UFP, a 3MF's plate_1.gcode; not
   .bgcode), its scalar values against the first slot (sum of the slots for mm); ours on
   the same files beside it.
3. Times each corpus file (median of several runs, in this process).
4. Builds ~100 MB G-code files in a temp dir from real corpus files (their header +
   their toolpath repeated + their real footer/config), plus a 3MF whose plate G-code is
   100 MB, and reads each in a fresh child process: wall time (median of 3) and memory
   (peak RSS growth over the child's baseline, from /proc VmHWM after resetting it, and the
   tracemalloc peak in a separate run).
   A ~10 MB copy of each is read too, to show memory does not grow with file size.

Exit status 1 when any corpus file cannot be read.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import _setup

_setup.setup_django()
ROOT = _setup.ROOT

from django.conf import settings  # noqa: E402

from catalog.slicer import CORE_FIELDS, SCHEMA_FIELDS, read_sliced_file  # noqa: E402
from catalog.slicer.scoring import values_match  # noqa: E402

PEER_NAME = "Moonraker (Arksine/moonraker metadata.py)"
PEER_RIGHT, PEER_TOTAL = 254, 338  # reference/slicer-formats.md §3, 12 core fields, 32 sliced files
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MiB = 1 << 20

CHILD = r"""
import json, sys, time, tracemalloc
sys.path.insert(0, sys.argv[1])
from catalog.slicer import read_sliced_file


def status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # KiB
    return 0


for warm in sys.argv[3].split(","):  # warm-up: imports (Pillow, numpy), caches
    read_sliced_file(warm)
mode, path = sys.argv[2], sys.argv[4]
if mode == "time":
    before = status("VmRSS")
    try:  # reset this process's peak RSS so VmHWM measures the read alone
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    started = time.perf_counter()
    info = read_sliced_file(path)
    wall = time.perf_counter() - started
    peak = status("VmHWM")
    fields = info.fields
    print(json.dumps({"wall": wall, "rss_growth_kib": max(0, peak - before), "rss_kib": peak,
                      "time": fields["estimated_time_s"], "grams": fields["filament_used_g_total"],
                      "height": fields["object_height"], "config": fields["config_key_count"],
                      "thumbs": fields["thumbnail_count"], "warnings": info.warnings}))
else:
    tracemalloc.start()
    read_sliced_file(path)
    print(json.dumps({"traced_peak": tracemalloc.get_traced_memory()[1]}))
"""


def main() -> int:
    corpus = Path(settings.FABLAB_CORPUS) / "slicer"
    expected_path = corpus / "expected.json"
    if not expected_path.is_file():
        print(f"corpus not found: {expected_path} (set FABLAB_CORPUS)")
        return 1
    expected = json.loads(expected_path.read_text(encoding="utf-8"))["files"]
    crashes = accuracy(corpus, expected)
    peer = os.environ.get("MOONRAKER_METADATA")
    if peer:
        live_peer(corpus, expected, Path(peer))
    timings(corpus, expected)
    big_files(corpus)
    return 1 if crashes else 0


def accuracy(corpus: Path, expected: dict) -> list[str]:
    per_field = {key: [0, 0] for key in SCHEMA_FIELDS}
    misses: list[str] = []
    crashes: list[str] = []
    for name, truth in expected.items():
        try:
            info = read_sliced_file(corpus / name)
        except Exception as exc:  # noqa: BLE001 - the bench reports every failure
            crashes.append(f"{name}: {exc.__class__.__name__}: {exc}")
            for key in SCHEMA_FIELDS:
                if truth.get(key) is not None:
                    per_field[key][1] += 1
            continue
        if info.format != truth["format"] or info.sliced is not truth.get("sliced", True):
            misses.append(f"{name}: format/sliced {info.format}/{info.sliced}")
        for key in SCHEMA_FIELDS:
            if key == "sliced":
                value, wanted = info.sliced, truth.get("sliced", True)
            else:
                value, wanted = info.fields.get(key), truth.get(key)
            if wanted is None:
                continue
            per_field[key][1] += 1
            if values_match(wanted, value, field=key):
                per_field[key][0] += 1
            else:
                misses.append(f"{name}: {key} expected {wanted!r} got {value!r}")

    def block(title: str, keys) -> tuple[int, int]:
        print(f"\n{title}")
        print(f"  {'field':<34} {'right':>6} {'stated':>7} {'accuracy':>9}")
        right = total = 0
        for key in keys:
            good, count = per_field[key]
            right += good
            total += count
            print(f"  {key:<34} {good:>6} {count:>7} {_pct(good, count):>9}")
        print(f"  {'overall':<34} {right:>6} {total:>7} {_pct(right, total):>9}")
        return right, total

    print(f"slicer metadata accuracy on {len(expected)} corpus files ({corpus})")
    print("scoring: non-null expected values only; numbers within 1 % or 0.011; strings exact (slicer name "
          "case-insensitive); lists element-wise, same length")
    core_right, core_total = block("12 core fields (the reference comparison)", CORE_FIELDS)
    block("all schema fields", SCHEMA_FIELDS)
    ours = core_right / core_total if core_total else 0.0
    peer = PEER_RIGHT / PEER_TOTAL
    print(f"\npeer figure (from reference/slicer-formats.md, not re-run here): {PEER_NAME} "
          f"{PEER_RIGHT}/{PEER_TOTAL} = {peer * 100:.1f} % on the 12 core fields")
    print(f"ours on the 12 core fields: {core_right}/{core_total} = {ours * 100:.1f} %  "
          f"(ratio to the peer: {ours / peer:.2f}x)")
    if misses:
        print(f"\nvalues that differ ({len(misses)}):")
        for line in misses:
            print(f"  {line}")
    else:
        print("\nevery stated value matches")
    if crashes:
        print(f"\nFILES THAT COULD NOT BE READ ({len(crashes)}):")
        for line in crashes:
            print(f"  {line}")
    return crashes


# --- the peer, run live ---------------------------------------------------------------------

# Our core field -> Moonraker's metadata key (reference/slicer-formats.md §3).
PEER_KEYS = {
    "slicer": "slicer", "estimated_time_s": "estimated_time", "filament_used_g_total": "filament_weight_total",
    "filament_used_mm": "filament_total", "filament_type": "filament_type", "layer_height": "layer_height",
    "first_layer_height": "first_layer_height", "nozzle_diameter": "nozzle_diameter",
    "nozzle_temperature_initial_layer": "first_layer_extr_temp",
    "bed_temperature_initial_layer": "first_layer_bed_temp", "printer_model": "printer_model",
    "object_height": "object_height",
}


def _peer_input(corpus: Path, name: str, tmp: Path) -> list[str] | None:
    """Arguments for Moonraker's metadata.py on a copy of the file in `tmp`; None when it takes no such file."""
    source = corpus / name
    if name.endswith(".bgcode"):
        return None
    if name.endswith(".ufp"):  # -u unzips the package to -p/-f and deletes the .ufp: give it a copy
        copy = tmp / name
        copy.write_bytes(source.read_bytes())
        return ["-p", str(tmp), "-f", "model.gcode", "-u", str(copy)]
    if name.endswith(".3mf"):
        with zipfile.ZipFile(source) as archive:
            if "Metadata/plate_1.gcode" not in archive.namelist():
                return None
            (tmp / "plate_1.gcode").write_bytes(archive.read("Metadata/plate_1.gcode"))
        return ["-p", str(tmp), "-f", "plate_1.gcode"]
    (tmp / name).write_bytes(source.read_bytes())
    return ["-p", str(tmp), "-f", name]


def _peer_value(key: str, value, wanted):
    """Moonraker's value in the shape of ours: lists of slots get its scalar for the first slot."""
    if value is None:
        return None
    if key == "filament_type" and isinstance(value, str):
        return [part.strip() for part in re.split(r"[;,]", value)]
    if isinstance(wanted, list) and not isinstance(value, list):
        if key == "filament_used_mm":
            return value, round(sum(v for v in wanted if isinstance(v, int | float)), 3)
        return value, wanted[0] if wanted else None
    return value


def live_peer(corpus: Path, expected: dict, script: Path) -> None:
    if not script.is_file():
        print(f"\nMOONRAKER_METADATA={script} is not a file; the peer is not run")
        return
    right = {"peer": 0, "ours": 0}
    total = 0
    files = 0
    failures = []
    for name, truth in expected.items():
        if not truth.get("sliced", True):
            continue
        with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
            args = _peer_input(corpus, name, Path(tmp))
            if args is None:
                continue
            run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                                 timeout=120)
        try:
            metadata = json.loads(run.stdout)["metadata"] if run.returncode == 0 else None
        except (ValueError, KeyError):
            metadata = None
        if metadata is None:
            failures.append(name)
            metadata = {}
        files += 1
        ours = read_sliced_file(corpus / name).fields
        for key in CORE_FIELDS:
            wanted = truth.get(key)
            if wanted is None:
                continue
            total += 1
            peer = _peer_value(key, metadata.get(PEER_KEYS[key]), wanted)
            if isinstance(peer, tuple):  # (its scalar, the expected value in its shape)
                right["peer"] += values_match(peer[1], peer[0], field=key)
            else:
                right["peer"] += values_match(wanted, peer, field=key)
            right["ours"] += values_match(wanted, ours.get(key), field=key)
    print(f"\npeer run live: {script} on {files} sliced files it can take (no .bgcode; 3MF as plate_1.gcode)")
    print(f"  Moonraker: {right['peer']}/{total} = {_pct(right['peer'], total)} on the 12 core fields")
    print(f"  ours:      {right['ours']}/{total} = {_pct(right['ours'], total)} on the same files and fields")
    if failures:
        print(f"  files it could not read ({len(failures)}): {', '.join(failures)}")


def timings(corpus: Path, expected: dict) -> None:
    print(f"\ntime per corpus file (median of {RUNS} runs, in-process, after a warm-up read)")
    print(f"  {'file':<56} {'format':>6} {'size':>9} {'ms':>8}")
    medians = []
    for name in expected:
        path = corpus / name
        try:
            read_sliced_file(path)
        except Exception:  # noqa: BLE001 - reported above
            continue
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            read_sliced_file(path)
            samples.append(time.perf_counter() - started)
        median = statistics.median(samples)
        medians.append(median)
        print(f"  {name:<56} {expected[name]['format']:>6} {path.stat().st_size / MiB:>7.2f}MB {median * 1000:>8.1f}")
    if medians:
        print(f"  {'median over files':<56} {'':>6} {'':>9} {statistics.median(medians) * 1000:>8.1f}")
        print(f"  {'slowest file':<56} {'':>6} {'':>9} {max(medians) * 1000:>8.1f}")


# --- 100 MB synthetic files ----------------------------------------------------------------


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(header, toolpath, footer) of a real G-code: the toolpath is what gets repeated."""
    half = len(data) // 2
    markers = (b"; EXECUTABLE_BLOCK_END", b"; max_layer_z", b"; objects_info", b"; filament used [mm]",
               b"; CONFIG_BLOCK_START", b"; prusaslicer_config")
    starts = [data.find(marker, half) for marker in markers]
    starts = [s for s in starts if s != -1]
    footer = min(starts) if starts else data.rfind(b"\n", 0, len(data) - 2048) + 1
    ends = [m.end() for m in re.finditer(rb"(THUMBNAIL_BLOCK_END|thumbnail(?:_\w+)? end|CONFIG_BLOCK_END)[^\n]*\n",
                                          data[:footer])]
    head = max(ends) if ends else data.find(b"\n", 4096) + 1
    return data[:head], data[head:footer], data[footer:]


def _build_gcode(source: Path, target: Path, size: int) -> None:
    head, body, foot = _split(source.read_bytes())
    with open(target, "wb") as out:
        out.write(head)
        written = len(head) + len(foot)
        while written < size:
            out.write(body)
            written += len(body)
        out.write(foot)


def _build_3mf(source_3mf: Path, plate_gcode: Path, target: Path) -> None:
    with zipfile.ZipFile(source_3mf) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED,
                                                             compresslevel=1) as zout:
        for info in zin.infolist():
            if info.filename == "Metadata/plate_1.gcode":
                entry = zipfile.ZipInfo(info.filename, info.date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with open(plate_gcode, "rb") as src, zout.open(entry, "w", force_zip64=True) as dst:
                    for chunk in iter(lambda: src.read(MiB), b""):
                        dst.write(chunk)
            else:
                zout.writestr(info, zin.read(info.filename))


def _child(mode: str, path: Path, warm: str) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, str(warm), str(path)],
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "child failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def big_files(corpus: Path) -> None:
    sources = [
        ("PrusaSlicer 2.8 (5 thumbnails, stats+config at end)", "prusaslicer-2.8.0a4_mk4ismmu3_DOCTORED.gcode"),
        ("PrusaSlicer 2.5 (no max_layer_z: full ';Z:' scan)", "prusaslicer-2.5.0_mk3smmu2s_m73.gcode"),
        ("OrcaSlicer 2.3 config at top (Flashforge layout)", "orcaslicer-2.3.0_ad5mpro_config-at-top.gcode"),
        ("OrcaSlicer 2.4 config at end", "orcaslicer-2.4.0a_ad5mpro_benchy.gcode"),
    ]
    warm = ",".join(str(corpus / name) for name in ("prusaslicer-2.3.3_mini_truncated.gcode",
                                                   "bambustudio-02.04.00.70_a1mini_cube.gcode.3mf"))
    print("\nlarge files (built from real corpus files: header + repeated toolpath + real footer/config); each read "
          "in a fresh child process")
    print(f"  {'file':<52} {'size':>8} {'wall s':>7} {'RSS +MiB':>9} {'traced MiB':>11}  values")
    with tempfile.TemporaryDirectory(prefix="slicer-bench-") as tmp:
        tmp_path = Path(tmp)
        for label, name in sources:
            for size in (10 * MiB, 100 * MiB):
                target = tmp_path / f"{size // MiB}MB-{name}"
                _build_gcode(corpus / name, target, size)
                _report(f"{label}", target, warm)
                if size != 100 * MiB or name != "orcaslicer-2.4.0a_ad5mpro_benchy.gcode":
                    target.unlink()
        plate = tmp_path / "100MB-orcaslicer-2.4.0a_ad5mpro_benchy.gcode"
        threemf = tmp_path / "100MB-plate.gcode.3mf"
        started = time.perf_counter()
        _build_3mf(corpus / "orcaslicer-2.4.0a_ad5mpro_benchy.gcode.3mf", plate, threemf)
        plate_mb, zipped_mb = plate.stat().st_size / MiB, threemf.stat().st_size / MiB
        print(f"  (built a 3MF with a {plate_mb:.0f} MB plate G-code, {zipped_mb:.0f} MB zipped, "
              f"in {time.perf_counter() - started:.1f} s)")
        _report("3MF, 100 MB plate G-code, config at end (full inflate)", threemf, warm)


def _report(label: str, path: Path, warm: str) -> None:
    try:
        timed = [_child("time", path, warm) for _ in range(3)]
        traced = _child("trace", path, warm)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"  {label:<52} FAILED: {exc}")
        return
    wall = statistics.median(t["wall"] for t in timed)
    growth = max(t["rss_growth_kib"] for t in timed) / 1024
    last = timed[-1]
    values = f"time={last['time']} g={last['grams']} h={last['height']} cfg={last['config']} thumbs={last['thumbs']}"
    if last["warnings"]:
        values += f" warnings={len(last['warnings'])}"
    print(f"  {label:<52} {path.stat().st_size / MiB:>6.0f}MB {wall:>7.3f} {growth:>9.1f} "
          f"{traced['traced_peak'] / MiB:>11.1f}  {values}")


def _pct(right: int, total: int) -> str:
    return f"{right / total * 100:.1f} %" if total else "-"


if __name__ == "__main__":
    sys.exit(main())
