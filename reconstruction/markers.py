"""The marker sheet: printed ArUco markers of known size that give a scan its true scale.

The customer prints the sheet at actual size, lays it flat and stands the object in its
clear centre. The layout below is the one truth: the PDF draws it, the pipeline detects
and triangulates it. Sheet coordinates are millimetres with the origin at the centre of
the page, x to the right, y towards the top edge and z out of the paper.
"""

import io
from functools import cache

import cv2
import numpy as np
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput

DICTIONARY = cv2.aruco.DICT_4X4_50
MARKER_MM = 36.0  # side of the black square, border included
CELLS = 6  # 4x4 data bits plus a one-cell black border
# marker id -> centre (x, y) in mm
MARKER_CENTRES = {
    11: (-75.0, 104.0), 12: (0.0, 104.0), 13: (75.0, 104.0),
    14: (-75.0, 0.0), 15: (75.0, 0.0),
    16: (-75.0, -104.0), 17: (0.0, -104.0), 18: (75.0, -104.0),
}
CLEAR_AREA_MM = (-50.0, -70.0, 50.0, 70.0)  # x0, y0, x1, y1: where the object stands
RULER_MM = 50.0
RULER_AT_MM = (-25.0, -80.0)  # left end of the ruler
PAPERS_MM = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
MM = 72.0 / 25.4  # PDF points per millimetre


def _corners(centre: tuple[float, float]) -> np.ndarray:
    """The four corners in ArUco order (top-left, top-right, bottom-right, bottom-left as printed)."""
    x, y = centre
    h = MARKER_MM / 2
    return np.array([[x - h, y + h, 0.0], [x + h, y + h, 0.0], [x + h, y - h, 0.0], [x - h, y - h, 0.0]])


LAYOUT = {marker_id: _corners(centre) for marker_id, centre in MARKER_CENTRES.items()}


@cache
def dictionary():
    return cv2.aruco.getPredefinedDictionary(DICTIONARY)


def marker_cells(marker_id: int) -> np.ndarray:
    """CELLS x CELLS booleans, True where the marker is black; row 0 is the top row as printed."""
    image = cv2.aruco.generateImageMarker(dictionary(), marker_id, CELLS, borderBits=1)
    return image < 128


def _check_paper(paper: str) -> tuple[float, float]:
    if paper not in PAPERS_MM:
        raise InvalidInput(_("Unknown paper size %(paper)s; choose one of %(choices)s.")
                           % {"paper": paper, "choices": ", ".join(PAPERS_MM)})
    return PAPERS_MM[paper]


def _black_runs(marker_id: int):
    """Black cells of a marker as horizontal runs: (x0, y_top, width) in sheet millimetres."""
    cells = marker_cells(marker_id)
    cell = MARKER_MM / CELLS
    left, top = LAYOUT[marker_id][0][:2]
    for row in range(CELLS):
        col = 0
        while col < CELLS:
            if not cells[row, col]:
                col += 1
                continue
            start = col
            while col < CELLS and cells[row, col]:
                col += 1
            yield left + start * cell, top - row * cell, (col - start) * cell, cell


def marker_sheet_pdf(*, paper: str = "A4") -> bytes:
    """A one-page PDF of the marker sheet, to be printed at actual size."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas
    from reportlab.pdfgen.canvas import FILL_NON_ZERO

    width, height = _check_paper(paper)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width * MM, height * MM), pageCompression=0)
    pdf.setTitle(_("fablab scan marker sheet"))

    def at(x: float, y: float) -> tuple[float, float]:
        return (x + width / 2) * MM, (y + height / 2) * MM

    pdf.setFillColorRGB(0, 0, 0)
    for marker_id in MARKER_CENTRES:
        # one path per marker: a single fill leaves no hairline seams between its cells
        path = pdf.beginPath()
        for x, top, run, cell in _black_runs(marker_id):
            path.rect(*at(x, top - cell), run * MM, cell * MM)
        pdf.drawPath(path, stroke=0, fill=1, fillMode=FILL_NON_ZERO)
        x, y = at(*LAYOUT[marker_id][3][:2])
        pdf.setFont("Helvetica", 6)
        pdf.drawString(x, y - 8, str(marker_id))

    # the clear area where the object stands
    x0, y0, x1, y1 = CLEAR_AREA_MM
    pdf.setStrokeColorRGB(0.6, 0.6, 0.6)
    pdf.setLineWidth(0.5)
    pdf.setDash(4, 4)
    pdf.rect(*at(x0, y0), (x1 - x0) * MM, (y1 - y0) * MM, stroke=1, fill=0)
    pdf.setDash()
    pdf.setFillColorRGB(0.5, 0.5, 0.5)
    pdf.setFont("Helvetica", 9)
    pdf.drawCentredString(*at(0, y1 - 6), _("Stand the object here"))

    # the check ruler: 50 mm with a tick every millimetre
    rx, ry = RULER_AT_MM
    pdf.setStrokeColorRGB(0, 0, 0)
    pdf.setLineWidth(0.4)
    pdf.line(*at(rx, ry), *at(rx + RULER_MM, ry))
    for mm in range(int(RULER_MM) + 1):
        tick = 4.0 if mm % 10 == 0 else 2.5 if mm % 5 == 0 else 1.5
        pdf.line(*at(rx + mm, ry), *at(rx + mm, ry + tick))
    pdf.setFillColorRGB(0, 0, 0)
    pdf.setFont("Helvetica", 6)
    for mm in range(0, int(RULER_MM) + 1, 10):
        pdf.drawCentredString(*at(rx + mm, ry + 5), str(mm))
    pdf.drawCentredString(*at(rx + RULER_MM / 2, ry - 4), _("This ruler must measure exactly 50 mm."))

    # title above the markers, instructions below them
    top = max(corners[:, 1].max() for corners in LAYOUT.values())
    bottom = min(corners[:, 1].min() for corners in LAYOUT.values())
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawCentredString(*at(0, top + 6), _("Scan marker sheet"))
    pdf.setFont("Helvetica", 8)
    text = _("Print at 100 % / actual size (not \"fit to page\"), measure the ruler, lay the sheet flat under "
             "the object and keep the markers visible in most photos.")
    for number, line in enumerate(simpleSplit(text, "Helvetica", 8, 180 * MM)):
        pdf.drawCentredString(*at(0, bottom - 5 - 3.5 * number), line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def marker_sheet_image(*, px_per_mm: float = 4.0, paper: str = "A4") -> np.ndarray:
    """The sheet's markers as a greyscale image (white paper), drawn from the same layout as the PDF.

    Pixel (u, v) of the image shows sheet point x = u / px_per_mm - width / 2, y = height / 2 - v / px_per_mm
    (pixel edges, not centres).
    """
    width, height = _check_paper(paper)
    image = np.full((round(height * px_per_mm), round(width * px_per_mm)), 255, np.uint8)
    for marker_id in MARKER_CENTRES:
        for x, top, run, cell in _black_runs(marker_id):
            u0, v0 = (x + width / 2) * px_per_mm, (height / 2 - top) * px_per_mm
            image[round(v0):round(v0 + cell * px_per_mm), round(u0):round(u0 + run * px_per_mm)] = 0
    return image


def _detector():
    parameters = cv2.aruco.DetectorParameters()
    parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    parameters.adaptiveThreshWinSizeMax = 53
    return cv2.aruco.ArucoDetector(dictionary(), parameters)


DETECT_LONG_SIDE = 2000


def detect(gray: np.ndarray) -> dict[int, np.ndarray]:
    """The sheet's markers found in a greyscale photo: id -> 4x2 corner pixels (ArUco order).

    Large photos are searched at a reduced size; the corners are then refined on the full image.
    """
    long_side = max(gray.shape[:2])
    factor = min(1.0, DETECT_LONG_SIDE / long_side)
    small = gray if factor == 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    corners, ids, _rejected = _detector().detectMarkers(small)
    found: dict[int, np.ndarray] = {}
    if ids is None:
        return found
    for quad, marker_id in zip(corners, ids.reshape(-1), strict=True):
        marker_id = int(marker_id)
        if marker_id not in LAYOUT or marker_id in found:
            continue
        points = quad.reshape(4, 2).astype(np.float32)
        if factor != 1.0:
            points = (points + 0.5) / factor - 0.5
            side = float(np.linalg.norm(points[0] - points[1]))
            window = int(max(3, min(15, side / CELLS / 4)))
            criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.01)
            points = cv2.cornerSubPix(gray, points.reshape(-1, 1, 2), (window, window), (-1, -1), criteria)
        found[marker_id] = points.reshape(4, 2).astype(np.float64)
    # the same id twice is either a second sheet or a false detection: trust neither
    counts = np.bincount(ids.reshape(-1), minlength=max(LAYOUT) + 1)
    return {marker_id: points for marker_id, points in found.items() if counts[marker_id] == 1}
