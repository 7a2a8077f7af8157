"""Flow definitions (FDL) the local stack's users deploy programmatically."""

from __future__ import annotations


def callback_flow(queue: str, *, timeout_seconds: int | None = None, priority: int = 1) -> str:
    """A one-step flow: task step ``Work`` sends ``{"task_token": ..., "n": $input.n}`` to the MNS
    queue ``queue`` and waits for its callback (``pattern: waitForCallback``); the flow's output
    is what the worker reported."""
    timeout = f"\n    timeoutSeconds: {timeout_seconds}" if timeout_seconds else ""
    return f"""version: v1
type: flow
steps:
  - type: task
    name: Work
    resourceArn: acs:mns:::/queues/{queue}/messages
    pattern: waitForCallback{timeout}
    inputMappings:
      - target: task_token
        source: $context.task.token
      - target: n
        source: $input.n
    serviceParams:
      MessageBody: $
      Priority: {priority}
"""
