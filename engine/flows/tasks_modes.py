"""When a user-task node is complete: the modes any (或签), all (会签), sequential (依次), ratio.

Pure: it looks at the node's tasks as they are and says the node's outcome, or None while it
is still undecided. An added signer counts with the task it was added to: that task is approved
only when it and all its signers approved, and rejected when any of them rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from typing import Literal

from engine.flows.refs import TaskOutcome
from engine.flows.tasks_store import Task

Effective = Literal["approved", "rejected", "pending"]
APPROVALS = ("approved", "done")


def effective_outcome(task: Task, signers: Sequence[Task]) -> Effective:
    """A base task's outcome counting the signers added before or after it."""
    if task.status == "cancelled":
        return "pending"
    everyone = [task, *signers]
    if any(t.outcome == "rejected" for t in everyone):
        return "rejected"
    if all(t.status == "done" and t.outcome in APPROVALS for t in everyone):
        return "approved"
    return "pending"


def decide(
    *, mode: str, ratio: float | None, kind: str, tasks: Sequence[Task]
) -> TaskOutcome | None:
    """The node's outcome from its tasks, or None while undecided.

    `any`: the first base task decided decides (the node settles after every action, so
    there is only ever one). `all` and `sequential`: one rejection rejects,
    every approval approves. `ratio`: approved once the approving share reaches `ratio`,
    rejected once it no longer can.
    """
    base = [t for t in tasks if t.parent_task_id is None and t.status != "cancelled"]
    if not base:
        return None
    signers = {t.id: [s for s in tasks if s.parent_task_id == t.id] for t in base}
    outcomes = [effective_outcome(t, signers[t.id]) for t in base]
    approved: TaskOutcome = "done" if kind in ("fill", "handle") else "approved"
    if mode == "ratio":
        needed = ceil((ratio or 1.0) * len(base) - 1e-9)
        yes = outcomes.count("approved")
        if yes >= needed:
            return approved
        if len(base) - outcomes.count("rejected") < needed:
            return "rejected"
        return None
    if mode == "any":
        if "approved" in outcomes:
            return approved
        return "rejected" if "rejected" in outcomes else None
    if "rejected" in outcomes:
        return "rejected"
    return approved if all(o == "approved" for o in outcomes) else None


def next_in_sequence(tasks: Sequence[Task]) -> Task | None:
    """For sequential nodes: the first waiting base task once every earlier one is approved."""
    base = sorted((t for t in tasks if t.parent_task_id is None), key=lambda t: (t.seq, t.id))
    for task in base:
        if task.status == "waiting":
            return task
        if task.status != "done" or task.outcome not in APPROVALS:
            return None
    return None


__all__ = ["APPROVALS", "Effective", "decide", "effective_outcome", "next_in_sequence"]
