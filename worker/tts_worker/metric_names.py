"""The metrics contract: the names and labels the operator queries.

The operator selects one TTSService and one pool with the `namespace`, `service` and `pool`
labels, for example
`sum by (pool) (rate(tts_characters_total{namespace="prod",service="tts"}[1m]))`. Renaming
anything here breaks autoscaling; tests on both sides pin these strings. The admission and
load-accounting semantics are the team's contract in docs (README, "Admission").
"""

from __future__ import annotations

# Every series carries these three labels, from TTS_NAMESPACE, TTS_SERVICE and TTS_POOL.
NAMESPACE_LABEL = "namespace"
SERVICE_LABEL = "service"
POOL_LABEL = "pool"
COMMON_LABELS = (NAMESPACE_LABEL, SERVICE_LABEL, POOL_LABEL)

STATUS_LABEL = "status"  # the HTTP status code of a synthesis request ("200", "429", ...)
ENGINE_LABEL = "engine"
DEVICE_LABEL = "device"
REASON_LABEL = "reason"

# Counter: synthesis requests (POST /tts and /v1/audio/speech) by response status; every
# answer, retries included.
REQUESTS_TOTAL = "tts_requests_total"
# Counter: characters of valid synthesis requests that are not retries, counted on arrival
# whether they are then served, answered from the cache or refused: the offered load the
# operator scales on, each request counted once however often it is retried.
CHARACTERS_TOTAL = "tts_characters_total"
# Counter: the same requests, counted once each.
OFFERED_REQUESTS_TOTAL = "tts_offered_requests_total"
# Counter: refusals by reason (queue_full, slo, draining, loading), retries included.
REFUSALS_TOTAL = "tts_refusals_total"
REFUSAL_REASONS = ("queue_full", "slo", "draining", "loading")
# Counter: characters of refused requests.
REFUSED_CHARACTERS_TOTAL = "tts_refused_characters_total"
# Counter: 200 answers (cache hits and streams included) whose last byte left within the
# request's SLO, TTS_LATENCY_SLO_SECONDS * max(1, chars / 100) (never TTS_MAX_WAIT): the
# good answers of the dashboard's SLO attainment and the burn-rate alerts, which no
# histogram can count for a per-100-characters SLO.
REQUESTS_WITHIN_SLO_TOTAL = "tts_requests_within_slo_total"
# Histogram: seconds from arrival to the audio being ready, for successful requests.
REQUEST_DURATION_SECONDS = "tts_request_duration_seconds"
# Histogram: seconds from arrival to the first audio byte leaving (the whole audio when not
# streamed), for successful requests.
TIME_TO_FIRST_AUDIO_SECONDS = "tts_time_to_first_audio_seconds"
# Gauge: synthesis requests admitted and not yet answered (cache hits excluded).
INFLIGHT_REQUESTS = "tts_inflight_requests"
# Gauge: requests admitted and waiting for a synthesis slot.
QUEUE_DEPTH = "tts_queue_depth"
# Gauge: characters admitted and not yet synthesised (queued, plus the unfinished part of
# those in service).
BACKLOG_CHARACTERS = "tts_backlog_characters"
# Gauge: the expected wait W of a request arriving now (0 when a slot is free).
EXPECTED_WAIT_SECONDS = "tts_expected_wait_seconds"
# Gauge: the throughput estimate R (characters per second) admission uses.
THROUGHPUT_ESTIMATE = "tts_throughput_estimate_characters_per_second"
# Gauge, always 1: which engine serves, on which device (cpu, cuda).
ENGINE_INFO = "tts_engine_info"
# Counters: the LRU audio cache (lookups of requests that are not retries).
CACHE_HITS_TOTAL = "tts_cache_hits_total"
CACHE_MISSES_TOTAL = "tts_cache_misses_total"
# Gauge: text chunks waiting for the engine's own pipeline (modelscope's batcher).
ENGINE_QUEUE_CHUNKS = "tts_engine_queue_chunks"
# Counter: CUDA out-of-memory errors the engine caught and recovered from (or gave up on).
OOM_TOTAL = "tts_cuda_oom_total"
# Histogram: chunks per engine call (micro-batching at work shows as values above 1).
BATCH_SIZE = "tts_batch_size"
# Counter: worker processes this pod replaced, by reason (max_requests, rss, vram).
RECYCLES_TOTAL = "tts_process_recycles_total"

DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0,
                    30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
