"""The one-line reason a person reads in `kubectl get tts`, Events and `explain`.

Form: ``<changes>: <why>; <why>`` — for example
``gpu-spot 0→1, cpu 3→0: demand 410 chars/s exceeds cpu ceiling 360; spot healthy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from elastic_tts.policy.schedule import ScheduleState
from elastic_tts.policy.spec import TTSServiceSpec


def describe(
    spec: TTSServiceSpec,
    schedule: ScheduleState,
    current: Mapping[str, int],
    targets: Mapping[str, int],
    notes: Sequence[str],
) -> str:
    changes = [
        f"{name} {current.get(name, 0)}→{target}"
        for name, target in targets.items()
        if current.get(name, 0) != target
    ]
    if changes:
        head = ", ".join(changes)
    else:
        steady = ", ".join(f"{name} {target}" for name, target in targets.items())
        head = f"no change ({steady})"
    why = list(notes)
    if schedule.window is not None:
        why.insert(0, f"window {schedule.window.name!r} ({schedule.mode})")
    return f"{head}: {'; '.join(why)}" if why else head
