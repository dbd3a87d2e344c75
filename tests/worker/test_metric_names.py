"""The metrics contract the operator queries: names, types and labels, pinned."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.worker.conftest import AppFactory
from tts_worker import metric_names

# The operator's queries depend on exactly these strings. Changing one is a breaking change
# for elastic_tts, which pins the same names on its side.
COMMON = {"namespace", "service", "pool"}
CONTRACT = {
    "tts_requests_total": ("counter", COMMON | {"status"}),
    "tts_characters_total": ("counter", COMMON),
    "tts_offered_requests_total": ("counter", COMMON),
    "tts_refusals_total": ("counter", COMMON | {"reason"}),
    "tts_refused_characters_total": ("counter", COMMON),
    "tts_requests_within_slo_total": ("counter", COMMON),
    "tts_request_duration_seconds": ("histogram", COMMON),
    "tts_time_to_first_audio_seconds": ("histogram", COMMON),
    "tts_inflight_requests": ("gauge", COMMON),
    "tts_queue_depth": ("gauge", COMMON),
    "tts_backlog_characters": ("gauge", COMMON),
    "tts_expected_wait_seconds": ("gauge", COMMON),
    "tts_throughput_estimate_characters_per_second": ("gauge", COMMON),
    "tts_engine_info": ("gauge", COMMON | {"engine", "device"}),
    "tts_cache_hits_total": ("counter", COMMON),
    "tts_cache_misses_total": ("counter", COMMON),
    "tts_engine_queue_chunks": ("gauge", COMMON),
    "tts_cuda_oom_total": ("counter", COMMON),
    "tts_batch_size": ("histogram", COMMON),
}
# Series that exist only once something happened (a recycle; a refusal's reason exists
# from the start).
LATER = {"tts_process_recycles_total": ("counter", COMMON | {"reason"})}


def test_the_names_module_pins_the_contract() -> None:
    assert metric_names.REQUESTS_TOTAL == "tts_requests_total"
    assert metric_names.CHARACTERS_TOTAL == "tts_characters_total"
    assert metric_names.OFFERED_REQUESTS_TOTAL == "tts_offered_requests_total"
    assert metric_names.REFUSALS_TOTAL == "tts_refusals_total"
    assert metric_names.REFUSAL_REASONS == ("queue_full", "slo", "draining", "loading")
    assert metric_names.REFUSED_CHARACTERS_TOTAL == "tts_refused_characters_total"
    assert metric_names.REQUESTS_WITHIN_SLO_TOTAL == "tts_requests_within_slo_total"
    assert metric_names.REQUEST_DURATION_SECONDS == "tts_request_duration_seconds"
    assert metric_names.TIME_TO_FIRST_AUDIO_SECONDS == "tts_time_to_first_audio_seconds"
    assert metric_names.INFLIGHT_REQUESTS == "tts_inflight_requests"
    assert metric_names.QUEUE_DEPTH == "tts_queue_depth"
    assert metric_names.BACKLOG_CHARACTERS == "tts_backlog_characters"
    assert metric_names.EXPECTED_WAIT_SECONDS == "tts_expected_wait_seconds"
    assert metric_names.ENGINE_INFO == "tts_engine_info"
    assert metric_names.CACHE_HITS_TOTAL == "tts_cache_hits_total"
    assert metric_names.CACHE_MISSES_TOTAL == "tts_cache_misses_total"
    assert metric_names.OOM_TOTAL == "tts_cuda_oom_total"
    assert metric_names.BATCH_SIZE == "tts_batch_size"
    assert metric_names.RECYCLES_TOTAL == "tts_process_recycles_total"
    assert metric_names.COMMON_LABELS == ("namespace", "service", "pool")
    assert metric_names.STATUS_LABEL == "status"
    assert metric_names.REASON_LABEL == "reason"
    declared = {value for name, value in vars(metric_names).items()
                if name.isupper() and isinstance(value, str) and value.startswith("tts_")}
    assert declared == set(CONTRACT) | set(LATER)


def test_every_series_is_exposed_with_the_namespace_service_and_pool_labels(
        make_app: AppFactory) -> None:
    app = make_app(NAMESPACE="news", SERVICE="news-reader", POOL="gpu-spot")
    client = app.test_client()
    client.post("/tts", json={"text": "你好"})
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, labels) in CONTRACT.items():
        family_name = name.removesuffix("_total") if kind == "counter" else name
        family = families[family_name]
        assert family.type == kind, name
        series = [s for s in family.samples if not s.name.endswith("_created")]
        assert series, f"{name} has no series"
        for s in series:
            assert set(s.labels) - {"le"} == labels, (name, s.labels)
            assert (s.labels["namespace"], s.labels["service"], s.labels["pool"]) == (
                "news", "news-reader", "gpu-spot")
    info = [s for s in families["tts_engine_info"].samples]
    assert [(s.labels["engine"], s.labels["device"], s.value) for s in info] == [
        ("test-silence", "cpu", 1.0)]
