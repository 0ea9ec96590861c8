"""A printable A4 sheet of spool labels (3 × 8, 70 × 37 mm) with a QR code of the spool's code.

Scanning the QR code with a handheld scanner types the code, which opens the spool
in the admin's search.
"""

import io

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

COLUMNS, ROWS = 3, 8
LABEL_W, LABEL_H = 70 * mm, 37 * mm
TOP_MARGIN = (A4[1] - ROWS * LABEL_H) / 2


def _qr_png(text: str) -> ImageReader:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=8, border=1)
    buffer.seek(0)
    return ImageReader(buffer)


def label_sheet_pdf(spools) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle("fablab spool labels")
    per_page = COLUMNS * ROWS
    for index, spool in enumerate(spools):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        x = (slot % COLUMNS) * LABEL_W
        y = A4[1] - TOP_MARGIN - (slot // COLUMNS + 1) * LABEL_H
        filament = spool.filament
        pdf.drawImage(_qr_png(spool.code), x + 3 * mm, y + 5 * mm, width=27 * mm, height=27 * mm)
        pdf.setFont("Helvetica-Bold", 13)
        pdf.drawString(x + 32 * mm, y + 27 * mm, spool.code)
        pdf.setFont("Helvetica", 8)
        pdf.drawString(x + 32 * mm, y + 21 * mm, filament.brand[:28])
        pdf.drawString(x + 32 * mm, y + 17 * mm, f"{filament.material} · {filament.diameter_mm} mm"[:28])
        pdf.drawString(x + 32 * mm, y + 13 * mm, filament.name[:28])
        for offset, colour in enumerate(filament.colours[:4]):
            pdf.setFillColor(colour)
            pdf.rect(x + 32 * mm + offset * 7 * mm, y + 5 * mm, 6 * mm, 5 * mm, stroke=1, fill=1)
        pdf.setFillColor("#000000")
    if not spools:
        pdf.drawString(20 * mm, A4[1] - 20 * mm, "No spools selected.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
