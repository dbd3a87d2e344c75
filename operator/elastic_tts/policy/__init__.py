"""The pure decision engine. No I/O, no clock: every input is an argument.

Public surface: the spec model (`parse_spec`, `load_spec`, `TTSServiceSpec`), the values
that flow through the engine (`Observation`, `PoolState`, `Memory`, `Decision`) and
`decide` itself.
"""

from elastic_tts.policy.decide import capacity_per_replica, decide, demand_of
from elastic_tts.policy.model import Decision, Memory, Observation, PoolState
from elastic_tts.policy.spec import Scaling, SpecError, TTSServiceSpec, load_spec, parse_spec

__all__ = [
    "Decision",
    "Memory",
    "Observation",
    "PoolState",
    "Scaling",
    "SpecError",
    "TTSServiceSpec",
    "capacity_per_replica",
    "decide",
    "demand_of",
    "load_spec",
    "parse_spec",
]
