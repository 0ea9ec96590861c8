"""printers.lifecycle on its own: what a report means for the printer's jobs (no database)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from printers import lifecycle
from printers.choices import JobOutcome
from printers.lifecycle import OpenJob, decide, estimated_end
from printers.state import NormalisedState

T0 = timezone.now()


def s(state, **kw):
    return NormalisedState(state=state, **kw)


def test_a_sync_never_records_a_job_it_did_not_see():
    finished = s("finished", job_key="715417865", current_file="sensor", progress_percent=100.0)
    # The same report compared with a state seen before: a whole job ran between two polls.
    assert decide(previous_state="idle", previous_job_key="", current=finished, open_job=None).missed_outcome \
        == JobOutcome.COMPLETED
    # As the first report of a connection (or after the printer was offline): nothing happened that we saw.
    for previous in ("idle", "printing", "offline", None):
        decision = decide(previous_state=previous, previous_job_key="", current=finished, open_job=None, sync=True)
        assert not decision.changes_anything, previous


def test_a_sync_closes_our_job_the_printer_shows_ended_as_unobserved():
    job = OpenJob("7", 50.0, "benchy")
    decision = decide(previous_state="printing", previous_job_key="7", open_job=job, sync=True,
                      current=s("finished", job_key="7", current_file="benchy", progress_percent=100.0))
    assert decision.close_outcome == JobOutcome.COMPLETED and not decision.end_observed
    assert decision.close_reason == lifecycle.UNOBSERVED_END
    assert not decision.start and decision.missed_outcome is None
    # Without the sync it is a finish that was seen.
    decision = decide(previous_state="printing", previous_job_key="7", open_job=job,
                      current=s("finished", job_key="7", current_file="benchy", progress_percent=100.0))
    assert decision.close_outcome == JobOutcome.COMPLETED and decision.end_observed


def test_a_sync_with_another_jobs_end_closes_ours_by_its_progress_and_records_nothing_else():
    job = OpenJob("a", 40.0, "benchy")
    decision = decide(previous_state="printing", previous_job_key="a", open_job=job, sync=True,
                      current=s("finished", job_key="715417865", current_file="sensor", progress_percent=100.0))
    assert decision.close_outcome == JobOutcome.CANCELLED and not decision.end_observed
    assert decision.missed_outcome is None and not decision.start


@pytest.mark.parametrize(("file_name", "outcome"), [("benchy", JobOutcome.COMPLETED), ("cube", JobOutcome.CANCELLED)])
def test_a_sync_without_job_ids_tells_jobs_apart_by_their_file(file_name, outcome):
    job = OpenJob("", 40.0, "benchy")  # a Bambu LAN print: task_id "0", no job id
    decision = decide(previous_state="printing", previous_job_key="", open_job=job, sync=True,
                      current=s("finished", current_file=file_name, progress_percent=100.0))
    assert decision.close_outcome == outcome and decision.missed_outcome is None


def test_a_sync_keeps_our_job_the_printer_still_runs_and_adopts_a_new_one():
    job = OpenJob("7", 50.0, "benchy")
    running = s("printing", job_key="7", current_file="benchy", progress_percent=60.0)
    assert not decide(previous_state="printing", previous_job_key="7", open_job=job, current=running,
                      sync=True).changes_anything
    other = decide(previous_state="printing", previous_job_key="7", open_job=job, sync=True,
                   current=s("printing", job_key="8", current_file="cube", progress_percent=3.0))
    assert other.close_outcome == JobOutcome.CANCELLED and not other.end_observed
    assert other.start and other.adopted


def test_estimated_end_is_the_last_report_plus_what_was_left_within_the_gap():
    last = T0
    assert estimated_end(last_report_at=last, remaining_seconds=600, now=last + timedelta(hours=1)) == \
        last + timedelta(seconds=600)
    assert estimated_end(last_report_at=last, remaining_seconds=7200, now=last + timedelta(hours=1)) == \
        last + timedelta(hours=1)  # never after the report that showed the end
    assert estimated_end(last_report_at=last, remaining_seconds=None, now=last + timedelta(hours=1)) == last
    assert estimated_end(last_report_at=None, remaining_seconds=600, now=last) == last
