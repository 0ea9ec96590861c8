from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.db import update_rows
from printers.models import PrinterLiveState
from printers.tests.factories import PrinterFactory

pytestmark = pytest.mark.django_db


def test_update_rows_writes_what_save_would_write():
    lives = [PrinterLiveState.objects.get_or_create(printer=PrinterFactory())[0] for _ in range(3)]
    when = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for index, live in enumerate(lives):
        live.state = "printing"
        live.progress_percent = 10.5 * index
        live.filament_slots = [{"slot": index, "colour": "#FF0000", "name": "PLA «rot»"}]
        live.last_report_at = when + timedelta(seconds=index)
        live.layer = None
    untouched = PrinterLiveState.objects.get_or_create(printer=PrinterFactory())[0]
    PrinterLiveState.objects.filter(pk=untouched.pk).update(state="idle")
    assert update_rows(lives, ["state", "progress_percent", "filament_slots", "last_report_at", "layer"]) == 3
    for index, live in enumerate(lives):
        stored = PrinterLiveState.objects.get(pk=live.pk)
        assert (stored.state, stored.progress_percent, stored.layer) == ("printing", 10.5 * index, None)
        assert stored.filament_slots == [{"slot": index, "colour": "#FF0000", "name": "PLA «rot»"}]
        assert stored.last_report_at == when + timedelta(seconds=index)
    untouched.refresh_from_db()
    assert untouched.state == "idle"
    assert update_rows([], ["state"]) == 0
    with pytest.raises(ValueError, match="non-key"):
        update_rows(lives, ["printer"])
