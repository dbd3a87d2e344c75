"""The metrics contract the operator queries: names, types and labels, pinned."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.worker.conftest import AppFactory
from tts_worker import metric_names

# The operator's queries depend on exactly these strings. Changing one is a breaking change
# for elastic_tts, which pins the same names on its side.
CONTRACT = {
    "tts_requests_total": ("counter", {"service", "pool", "status"}),
    "tts_characters_total": ("counter", {"service", "pool"}),
    "tts_request_duration_seconds": ("histogram", {"service", "pool"}),
    "tts_inflight_requests": ("gauge", {"service", "pool"}),
    "tts_queue_depth": ("gauge", {"service", "pool"}),
    "tts_engine_info": ("gauge", {"service", "pool", "engine", "device"}),
    "tts_cache_hits_total": ("counter", {"service", "pool"}),
    "tts_cache_misses_total": ("counter", {"service", "pool"}),
    "tts_cuda_oom_total": ("counter", {"service", "pool"}),
    "tts_batch_size": ("histogram", {"service", "pool"}),
}


def test_the_names_module_pins_the_contract() -> None:
    assert metric_names.REQUESTS_TOTAL == "tts_requests_total"
    assert metric_names.CHARACTERS_TOTAL == "tts_characters_total"
    assert metric_names.REQUEST_DURATION_SECONDS == "tts_request_duration_seconds"
    assert metric_names.INFLIGHT_REQUESTS == "tts_inflight_requests"
    assert metric_names.QUEUE_DEPTH == "tts_queue_depth"
    assert metric_names.ENGINE_INFO == "tts_engine_info"
    assert metric_names.CACHE_HITS_TOTAL == "tts_cache_hits_total"
    assert metric_names.CACHE_MISSES_TOTAL == "tts_cache_misses_total"
    assert metric_names.OOM_TOTAL == "tts_cuda_oom_total"
    assert metric_names.BATCH_SIZE == "tts_batch_size"
    assert metric_names.COMMON_LABELS == ("service", "pool")
    assert metric_names.STATUS_LABEL == "status"


def test_every_series_is_exposed_with_the_service_and_pool_labels(
        make_app: AppFactory) -> None:
    app = make_app(SERVICE="news-reader", POOL="gpu-spot")
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
            assert (s.labels["service"], s.labels["pool"]) == ("news-reader", "gpu-spot")
    info = [s for s in families["tts_engine_info"].samples]
    assert [(s.labels["engine"], s.labels["device"], s.value) for s in info] == [
        ("test-silence", "cpu", 1.0)]
