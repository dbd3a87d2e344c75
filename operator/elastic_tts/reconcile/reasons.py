"""Condition types and Event reasons: the one place they are spelled (as KEDA's
condition_types.go). Users grep for these, alerts match on them: never rename lightly."""

from __future__ import annotations

# Condition types on status.conditions
READY = "Ready"
METRICS_AVAILABLE = "MetricsAvailable"
SPOT_FALLBACK = "SpotFallback"
PAUSED = "Paused"
INVALID_SPEC = "InvalidSpec"
WORKER_FAILING = "WorkerFailing"  # a worker cannot start its engine (or its container)
CONDITION_TYPES = (READY, METRICS_AVAILABLE, SPOT_FALLBACK, PAUSED, INVALID_SPEC,
                   WORKER_FAILING)

# Event reasons; each fires on a transition only
SCALED_UP = "ScaledUp"
SCALED_DOWN = "ScaledDown"
SPOT_FALLBACK_EVENT = "SpotFallback"
SPOT_RECOVERED = "SpotRecovered"
SCHEDULE_WINDOW_OPENED = "ScheduleWindowOpened"
METRICS_UNAVAILABLE = "MetricsUnavailable"
INVALID_SPEC_EVENT = "InvalidSpec"
ENGINE_FAILED = "EngineFailed"
EVENT_REASONS = (
    SCALED_UP, SCALED_DOWN, SPOT_FALLBACK_EVENT, SPOT_RECOVERED, SCHEDULE_WINDOW_OPENED,
    METRICS_UNAVAILABLE, INVALID_SPEC_EVENT, ENGINE_FAILED,
)

# Condition reasons (the machine-readable "why" of a condition's status)
ALL_READY = "AllReplicasReady"
STARTING = "ReplicasStarting"
QUERY_OK = "QuerySucceeded"
QUERY_FAILED = "QueryFailed"
SPOT_HEALTHY = "SpotHealthy"
SPOT_BACKED_OFF = "SpotBackedOff"
PAUSED_BY_SPEC = "PausedBySpec"
RUNNING = "Running"
SPEC_VALID = "SpecValid"
SPEC_INVALID = "SpecInvalid"
WORKERS_STARTING = "WorkersStartingOrServing"
# ENGINE_FAILED is also WorkerFailing's reason when True
