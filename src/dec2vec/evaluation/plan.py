"""Which tasks a ``dec2vec eval`` run scores: task names and tiers resolved, data loaded up front.

A plan is made before any model loads, so a typo in a task name or a hub task that cannot be read
fails in seconds, not after an hour of other tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from . import mteb_tasks
from .datasets import eval_dir, file_name, load_task, read_manifest, task_names
from .tasks import TaskData

TIERS = ("quick", "standard", "full")


@dataclass(frozen=True)
class TaskPlan:
    name: str
    type: str  # sts, classification, ... or the MTEB type of a hub task
    quick: bool
    data: TaskData | None  # None for a hub task
    sha256: str | None
    hub: Any = None  # the loaded mteb task of a hub task
    tier: str = "full"  # quick, standard or full (hub tasks: full)


def resolve_tasks(spec: Sequence[str], quick: bool | str = False) -> list[tuple[str, str]]:
    """``all`` | ``standard`` | ``quick`` | names (dec2vec tasks, else MTEB hub tasks) -> [(name, tier)].

    Named tasks run in the tier given by ``quick`` (True: quick; a tier name; False: full); ``all``
    is the full suite, or every task in that tier when one is given."""
    if not spec:
        raise InputError("no tasks given: use --tasks all, --tasks standard, --tasks quick or task names")
    named = quick if isinstance(quick, str) else ("quick" if quick else "full")
    if named not in TIERS:
        raise InputError(f"unknown tier '{named}'; choose from {', '.join(TIERS)}")
    out: list[tuple[str, str]] = []
    for s in spec:
        if s in ("all", "quick", "standard"):
            tier = named if s == "all" else s
            out += [(n, tier) for n in task_names()]
        else:
            out.append((s, named))
    seen: set[tuple[str, str]] = set()
    return [t for t in out if not (t in seen or seen.add(t))]


def plan_tasks(spec: Sequence[str], quick: bool | str) -> list[TaskPlan]:
    from .standard import digest, load_standard

    ours = set(task_names())
    plans = []
    for name, tier in resolve_tasks(spec, quick):
        if name in ours:
            if tier == "standard":
                data = load_standard(name)
                sha = digest(data)
            else:
                q = tier == "quick"
                data = load_task(name, quick=q)
                entry = read_manifest(eval_dir()).get("tasks", {}).get(name, {})
                sha = entry.get("files", {}).get(file_name(name, q), {}).get("sha256")
            plans.append(TaskPlan(name, data.type, tier == "quick", data, sha, tier=tier))
        else:
            task = mteb_tasks.hub_task(name)
            try:  # fail before any model is loaded, not after an hour of other tasks
                task.load_data()
            except Exception as e:
                raise InputError(
                    f"MTEB task '{name}' needs its data from the Hugging Face hub, which could not be read "
                    f"(offline?): {type(e).__name__}: {e}"
                ) from e
            plans.append(TaskPlan(name, task.metadata.type, False, None, None, task))
    return plans
