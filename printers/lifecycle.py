"""Job lifecycle from two consecutive normalised states — pure, no database.

Rules (printers.md §1.5, §2.3, §8):
- a *sync* is a report the app cannot compare with the previous one because it did not watch the
  printer in between: the first report of every connection (run_printers says so, whether the
  previous process stopped cleanly, was killed or the host rebooted), the first report after the
  printer was offline or never seen, and a report that comes after a gap longer than any observer
  leaves without a report or an offline verdict (the services decide that, e.g. after the PrusaLink
  poller was down). A sync never starts or ends a job on its own evidence alone:
  - a job found active is adopted (its start was not observed); our open job goes on when the
    printer still runs it;
  - a terminal state (finished / cancelled / failed) never records a job that we did not see
    (no job is made up with the time of the reconnect as its start and end);
  - our open job that the printer now shows ended (the same job in a terminal state) ended while
    nobody listened: it is closed once with the printer's outcome — FINISH means the filament was
    used — and its end time is estimated from the last report before the gap (see
    `estimated_end`), never the time of the reconnect;
  - our open job that is gone (the printer is idle, or shows another job) is closed by its last
    progress, as below, also at the estimated end;
  "the same job" needs the printer's job id on both sides to match; where one side has none (Bambu
  LAN prints), a sync compares the file names as well, so another job's FINISH never completes ours;
- a job starts when the printer enters an active state (preparing, printing, paused, needs
  attention) without an open job, or when the printer's job id changes;
- it ends once, on entering finished / cancelled / failed; those states are sticky, repeating
  them changes nothing;
- when the job disappears (the printer is idle again, or reports another job id) before its end
  was seen, it is closed by its last progress: >= 99.9 % completed, otherwise cancelled;
- a job that started and ended between two polls (a new job id seen only in a terminal state,
  never in a sync) is recorded as started and ended at once;
- going offline changes nothing about jobs: the job stays open until the printer says more.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from printers.choices import ACTIVE_STATES, TERMINAL_STATE_OUTCOME, JobOutcome, PrinterState
from printers.state import NormalisedState

COMPLETE_PERCENT = 99.9
FILE_NAME_LENGTH = 255  # as much of the file name as a PrinterJob keeps
UNOBSERVED_END = "the job ended while the app was not listening (end time estimated)"


@dataclass(frozen=True)
class OpenJob:
    external_job_id: str
    progress_reached: float
    file_name: str = ""


@dataclass(frozen=True)
class JobDecision:
    close_outcome: str | None = None  # end the open job with this outcome
    close_reason: str = ""
    end_observed: bool = True  # False: the open job ended while nobody listened (use `estimated_end`)
    own_progress: bool = False  # the current report's progress is the closed job's (it shows that job ended)
    start: bool = False  # open a new job for the current state
    adopted: bool = False  # ... found already running (start not observed)
    missed_outcome: str | None = None  # record a whole job that ran between two observations

    @property
    def changes_anything(self) -> bool:
        return bool(self.close_outcome or self.start or self.missed_outcome)


def estimated_end(*, last_report_at: datetime | None, remaining_seconds: int | None, now: datetime) -> datetime:
    """When a job that ended unobserved probably ended: the last report before the gap plus the
    remaining time it showed, never before that report and never after `now` (the sync)."""
    if last_report_at is None:
        return now
    end = last_report_at + timedelta(seconds=max(0, remaining_seconds or 0))
    return max(last_report_at, min(end, now))


def _disappeared(open_job: OpenJob, current: NormalisedState) -> str:
    progress = max(open_job.progress_reached, current.progress_percent or 0) if current.is_active else \
        open_job.progress_reached
    return JobOutcome.COMPLETED if progress >= COMPLETE_PERCENT else JobOutcome.CANCELLED


def _same_job(open_job: OpenJob, current: NormalisedState, *, by_file: bool = False) -> bool:
    if open_job.external_job_id and current.job_key:
        return open_job.external_job_id == current.job_key
    if by_file and open_job.file_name and current.current_file:
        return open_job.file_name == current.current_file[:FILE_NAME_LENGTH]
    return True


def decide(*, previous_state: str | None, previous_job_key: str, current: NormalisedState,
           open_job: OpenJob | None, sync: bool = False) -> JobDecision:
    """What `current` means for the printer's jobs; `sync`: the caller knows it is the first report
    of a connection, or that it comes after a gap nobody watched (see the module's rules)."""
    if current.state == PrinterState.OFFLINE:
        return JobDecision()
    sync = sync or previous_state in (None, PrinterState.OFFLINE)

    if open_job is not None:
        same = _same_job(open_job, current, by_file=sync)
        if current.is_active:
            restarted = not sync and previous_state not in ACTIVE_STATES
            if same and not restarted:
                return JobDecision()
            return JobDecision(
                close_outcome=_disappeared(open_job, current),
                close_reason="the printer started another job before this one was seen ending",
                end_observed=not sync, start=True, adopted=sync,
            )
        if current.is_terminal and same:
            if sync:
                return JobDecision(close_outcome=TERMINAL_STATE_OUTCOME[current.state], close_reason=UNOBSERVED_END,
                                   end_observed=False, own_progress=True)
            return JobDecision(close_outcome=TERMINAL_STATE_OUTCOME[current.state], own_progress=True,
                               close_reason=current.reason or f"printer reported {current.raw_state or current.state}")
        missed = None
        if current.is_terminal and not sync and current.job_key:
            missed = TERMINAL_STATE_OUTCOME[current.state]
        return JobDecision(close_outcome=_disappeared(open_job, current),
                           close_reason="the job disappeared from the printer before its end was seen",
                           end_observed=not sync, missed_outcome=missed)

    if current.is_active:
        return JobDecision(start=True, adopted=sync)
    if current.is_terminal and not sync and current.job_key and current.job_key != previous_job_key:
        return JobDecision(missed_outcome=TERMINAL_STATE_OUTCOME[current.state])
    return JobDecision()
