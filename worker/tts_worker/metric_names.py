"""The metrics contract: the names and labels the operator queries.

The operator selects one TTSService and one pool with the `service` and `pool` labels, for
example `sum(rate(tts_characters_total{service="tts",pool="gpu"}[1m]))`. Renaming anything
here breaks autoscaling; tests on both sides pin these strings.
"""

from __future__ import annotations

# Every series carries these two labels, from TTS_SERVICE and TTS_POOL.
SERVICE_LABEL = "service"
POOL_LABEL = "pool"
COMMON_LABELS = (SERVICE_LABEL, POOL_LABEL)

STATUS_LABEL = "status"  # the HTTP status code of a POST /tts, as text ("200", "429", ...)
ENGINE_LABEL = "engine"
DEVICE_LABEL = "device"

# Counter: POST /tts requests by response status.
REQUESTS_TOTAL = "tts_requests_total"
# Counter: characters of every valid POST /tts, counted on arrival whether it is then served,
# answered from the cache or refused for capacity; this is the offered load.
CHARACTERS_TOTAL = "tts_characters_total"
# Histogram: seconds from arrival to the audio being ready, for successful requests.
REQUEST_DURATION_SECONDS = "tts_request_duration_seconds"
# Gauge: POST /tts requests admitted and not yet answered (cache hits excluded).
INFLIGHT_REQUESTS = "tts_inflight_requests"
# Gauge: admitted text chunks waiting for the engine (modelscope's pipeline queue).
QUEUE_DEPTH = "tts_queue_depth"
# Gauge, always 1: which engine serves, on which device (cpu, cuda).
ENGINE_INFO = "tts_engine_info"
# Counters: the LRU audio cache.
CACHE_HITS_TOTAL = "tts_cache_hits_total"
CACHE_MISSES_TOTAL = "tts_cache_misses_total"
# Counter: CUDA out-of-memory errors the engine caught and recovered from (or gave up on).
OOM_TOTAL = "tts_cuda_oom_total"
# Histogram: chunks per engine call (micro-batching at work shows as values above 1).
BATCH_SIZE = "tts_batch_size"

DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0,
                    30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
