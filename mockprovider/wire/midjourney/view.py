"""A task as midjourney-proxy shows it: the body of /task/{id}/fetch, list-by-condition and callbacks."""

from __future__ import annotations

from typing import Any

from ...behaviours import Kind, Phase
from .actions import buttons
from .store import Job

# The progress Discord's message shows while a grid renders (assumed: the steps its progress messages
# are seen at); fetch and callbacks both show the last step reached.
PROGRESS_STEPS = (0, 15, 31, 46, 62, 78, 93)

FAIL_REASONS = {Kind.TIMEOUT: "Task timeout", Kind.OVERLOADED: "Queue is full",
                Kind.OUTAGE: "No available account instance", Kind.CONTENT_POLICY: "Banned prompt"}


def progress_step(job: Job, now: float) -> int:
    """The last progress step a running task has reached, on the loop clock `now`."""
    call = job.call
    if call is None or call.service_ms <= 0:
        return 0
    done = 100.0 * (now - call.running_since) * 1000.0 / call.service_ms
    step = 0
    for s in PROGRESS_STEPS:
        if s <= done:
            step = s
    return step


def status_of(job: Job, now: float) -> tuple[str, str]:
    if job.outcome is not None:
        return ("SUCCESS", "100%") if job.outcome.ok else ("FAILURE", "0%")
    call = job.call
    phase = call.phase if call is not None else Phase.RECEIVED
    if phase is Phase.RUNNING:
        return "IN_PROGRESS", f"{progress_step(job, now)}%"
    if phase is Phase.QUEUED:
        return "SUBMITTED", "0%"
    return "NOT_START", "0%"


def task_view(job: Job, now: float, status: tuple[str, str] | None = None) -> dict[str, Any]:
    """The task's JSON; `status` shows it as of a change being called back rather than as of now."""
    state, progress = status or status_of(job, now)
    success = state == "SUCCESS"
    properties: dict[str, Any] = {"notifyHook": job.hook, "finalPrompt": job.prompt, "model": job.model}
    if success:
        properties["messageHash"] = job.message_hash
        properties["costUsd"] = job.cost_usd
    fail_reason = None
    if state == "FAILURE" and job.outcome is not None:
        fail_reason = FAIL_REASONS.get(job.outcome.kind, "Internal error")
    return {"id": job.id, "action": job.action, "status": state, "prompt": job.prompt, "promptEn": job.prompt,
            "description": job.description or f"/imagine {job.prompt}", "state": job.state, "submitTime": job.submit_ms,
            "startTime": job.start_ms, "finishTime": job.finish_ms,
            "imageUrl": job.image_url if success else None, "progress": progress, "failReason": fail_reason,
            "properties": properties, "buttons": buttons(job.grid, job.message_hash) if success else []}
