"""Turns a written completion into what follows it: the job's event, the next scheduled run's
event, and a wake-up for the queue when the write freed or created work.

Called by the completer after the batch committed, so listeners only see persisted facts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bgjobs.adapters.base import Applied, Completion, Outcome
from bgjobs.events import (
    Event,
    JobCancelled,
    JobDiscarded,
    JobFailed,
    JobProgress,
    JobSnoozed,
    JobSucceeded,
    QueueError,
    ScheduledNextRun,
    ScheduledRunSkipped,
)
from bgjobs.runtime.queue_runner import QueueRunner


class OutcomeEvents:
    def __init__(
        self,
        emit: Callable[[Event], None],
        listening: Callable[[str | None, str | None], bool],
        now: Callable[[], datetime],
        runner: Callable[[str], QueueRunner | None],
    ) -> None:
        self._emit = emit
        self._listening = listening
        self._now = now
        self._runner = runner

    def after_complete(self, completion: Completion, applied: Applied) -> None:
        job = completion.job
        at = self._now()
        if not applied.applied:
            self._emit(
                QueueError(
                    at=at,
                    queue=job.queue,
                    error=f"job {job.id} was no longer reserved by this node when it finished "
                    "(rescued or released); its outcome was dropped",
                )
            )
            return
        outcome = completion.outcome
        runner = self._runner(job.queue)
        if runner is not None and (
            runner.spec.blocking or applied.next_run is not None or outcome is not Outcome.SUCCEEDED
        ):
            runner.notify()
        if not self._listening(job.queue, job.name):
            return
        if (progress := completion.progress) is not None:  # written with the outcome
            self._emit(
                JobProgress(at=at, job=job, fraction=progress.fraction, message=progress.message)
            )
        if completion.skipped is not None:
            self._emit(ScheduledRunSkipped(at=at, job=job, reason=completion.skipped.value))
        elif outcome is Outcome.SUCCEEDED:
            duration = at - (job.reserved_at or at)
            self._emit(JobSucceeded(at=at, job=job, duration=max(duration, timedelta(0))))
        elif outcome is Outcome.RETRY:
            assert completion.error is not None
            self._emit(
                JobFailed(at=at, job=job, error=completion.error, retry_at=at + completion.delay)
            )
        elif outcome is Outcome.SNOOZED:
            self._emit(JobSnoozed(at=at, job=job, until=at + completion.delay))
        elif outcome is Outcome.CANCELLED:
            self._emit(JobCancelled(at=at, job=job, node_id=completion.node_id))
        else:
            assert completion.error is not None
            self._emit(JobDiscarded(at=at, job=job, error=completion.error))
        if applied.next_run is not None:
            self._emit(
                ScheduledNextRun(
                    at=at,
                    schedule=job.schedule or job.name,
                    job=applied.next_run,
                    run_at=applied.next_run.available_at,
                )
            )
