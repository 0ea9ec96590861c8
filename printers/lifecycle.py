"""Job lifecycle from two consecutive normalised states — pure, no database.

Rules (printers.md §1.5, §2.3, §8):
- the first report after (re)connecting (previous state offline, or none) is a *sync*: a job
  found running is adopted (its start was not observed), a terminal state found on the printer
  does not start or end anything — except that it ends our own open job when it is that job;
- a job starts when the printer enters an active state (preparing, printing, paused, needs
  attention) without an open job, or when the printer's job id changes;
- it ends once, on entering finished / cancelled / failed; those states are sticky, repeating
  them changes nothing;
- when the job disappears (the printer is idle again, or reports another job id) before its end
  was seen, it is closed by its last progress: >= 99.9 % completed, otherwise cancelled;
- a job that started and ended between two polls (a new job id seen only in a terminal state)
  is recorded as started and ended at once;
- going offline changes nothing about jobs: the job stays open until the printer says more.
"""

from dataclasses import dataclass

from printers.choices import ACTIVE_STATES, TERMINAL_STATE_OUTCOME, JobOutcome, PrinterState
from printers.state import NormalisedState

COMPLETE_PERCENT = 99.9


@dataclass(frozen=True)
class OpenJob:
    external_job_id: str
    progress_reached: float


@dataclass(frozen=True)
class JobDecision:
    close_outcome: str | None = None  # end the open job with this outcome
    close_reason: str = ""
    start: bool = False  # open a new job for the current state
    adopted: bool = False  # ... found already running (start not observed)
    missed_outcome: str | None = None  # record a whole job that ran between two observations

    @property
    def changes_anything(self) -> bool:
        return bool(self.close_outcome or self.start or self.missed_outcome)


def _disappeared(open_job: OpenJob, current: NormalisedState) -> str:
    progress = max(open_job.progress_reached, current.progress_percent or 0) if current.is_active else \
        open_job.progress_reached
    return JobOutcome.COMPLETED if progress >= COMPLETE_PERCENT else JobOutcome.CANCELLED


def _same_job(open_job: OpenJob, current: NormalisedState) -> bool:
    return not (open_job.external_job_id and current.job_key and open_job.external_job_id != current.job_key)


def decide(*, previous_state: str | None, previous_job_key: str, current: NormalisedState,
           open_job: OpenJob | None) -> JobDecision:
    if current.state == PrinterState.OFFLINE:
        return JobDecision()
    sync = previous_state in (None, PrinterState.OFFLINE)

    if open_job is not None:
        if current.is_active:
            restarted = not sync and previous_state not in ACTIVE_STATES
            if _same_job(open_job, current) and not restarted:
                return JobDecision()
            return JobDecision(
                close_outcome=_disappeared(open_job, current),
                close_reason="the printer started another job before this one was seen ending",
                start=True, adopted=sync,
            )
        if current.is_terminal and _same_job(open_job, current):
            return JobDecision(close_outcome=TERMINAL_STATE_OUTCOME[current.state],
                               close_reason=current.reason or f"printer reported {current.raw_state or current.state}")
        missed = None
        if current.is_terminal and not sync and current.job_key:
            missed = TERMINAL_STATE_OUTCOME[current.state]
        return JobDecision(close_outcome=_disappeared(open_job, current),
                           close_reason="the job disappeared from the printer before its end was seen",
                           missed_outcome=missed)

    if current.is_active:
        return JobDecision(start=True, adopted=sync)
    if current.is_terminal and not sync and current.job_key and current.job_key != previous_job_key:
        return JobDecision(missed_outcome=TERMINAL_STATE_OUTCOME[current.state])
    return JobDecision()
