"""The chart's alerts under `promtool check rules` and `promtool test rules`: each alert
fires on the series that mean trouble, after its `for`, and stays quiet on the ones that
look alike but do not (a healthy service, client errors, one conflict, a deliberate
shutdown, a short spot retry).

Series are named and labelled as the exporters name them (tests/monitoring/test_exporters.py
checks those names against the real exporters).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import queries as q
from tests.required import tool

NS, SVC = "tts-prod", "tts"
WHO = f'namespace="{NS}",service="{SVC}"'
RUNBOOK = "https://github.com/elastic-tts/elastic-tts/blob/main/docs/troubleshooting.md"
# absent(elastic_tts_build_info) fires wherever no operator is scraped: every test but the
# one about that has an operator.
OPERATOR = {"series": 'elastic_tts_build_info{version="0.1.0"}', "values": "1x300"}


def promtool() -> str:
    return tool("promtool")


def _answers(ok: int, refused: int, within: int, client_errors: int = 0,
             minutes: int = 300) -> list[dict[str, str]]:
    """Per-minute counts of one worker's answers, as counters."""
    def counter(labels: str, per_minute: int) -> dict[str, str]:
        return {"series": f"{labels}", "values": f"0+{per_minute}x{minutes}"}

    pod = f'{WHO},pool="gpu"'
    return [counter(f'tts_requests_total{{{pod},status="200"}}', ok),
            counter(f'tts_requests_total{{{pod},status="429"}}', refused),
            counter(f'tts_requests_total{{{pod},status="400"}}', client_errors),
            counter(f"tts_requests_within_slo_total{{{pod}}}", within), OPERATOR]


def _alert(name: str, severity: str, labels: dict[str, str],
           annotations: dict[str, str]) -> dict[str, Any]:
    return {"exp_labels": {"alertname": name, "severity": severity, **labels},
            "exp_annotations": {**annotations, "runbook_url": f"{RUNBOOK}#{name.lower()}"}}


def _burn(name: str, severity: str, value: str, tail: str) -> dict[str, Any]:
    return _alert(name, severity, {"namespace": NS, "service": SVC}, {
        "summary": f"{NS}/{SVC} is spending its latency error budget" + (
            " fast" if name.endswith("Fast") else ""),
        "description": f"{value} of answers miss the per-100-character latency SLO "
                       f"(objective 0.995): {tail}"})


FAST_TAIL = "at this rate the 30-day budget lasts two days or less."
SLOW_TAIL = "the 30-day budget will not last the month."

TESTS: dict[str, dict[str, Any]] = {
    "10 % of answers miss the SLO: both burn-rate alerts": {
        "input_series": _answers(ok=90, refused=10, within=90),
        "alert_rule_test": [
            {"eval_time": "65m", "alertname": "ElasticTTSSLOBurnRateFast",
             "exp_alerts": [_burn("ElasticTTSSLOBurnRateFast", "critical", "10%", FAST_TAIL)]},
            {"eval_time": "65m", "alertname": "ElasticTTSSLOBurnRateSlow",
             "exp_alerts": [_burn("ElasticTTSSLOBurnRateSlow", "warning", "10%", SLOW_TAIL)]},
        ],
    },
    "1 % miss: only the slow burn (a ticket, not a page)": {
        "input_series": _answers(ok=99, refused=0, within=98),
        "alert_rule_test": [
            {"eval_time": "4h", "alertname": "ElasticTTSSLOBurnRateFast", "exp_alerts": []},
            {"eval_time": "4h", "alertname": "ElasticTTSSLOBurnRateSlow",
             "exp_alerts": [_burn("ElasticTTSSLOBurnRateSlow", "warning", "1.01%", SLOW_TAIL)]},
        ],
    },
    "0.1 % miss, and many client errors: quiet": {
        "input_series": _answers(ok=1000, refused=0, within=999, client_errors=500),
        "alert_rule_test": [
            {"eval_time": "4h", "alertname": "ElasticTTSSLOBurnRateFast", "exp_alerts": []},
            {"eval_time": "4h", "alertname": "ElasticTTSSLOBurnRateSlow", "exp_alerts": []},
        ],
    },
    "spot in fallback 40 minutes, with a short retry: fires; a pool back on spot: quiet": {
        "input_series": [
            {"series": f'elastic_tts_spot_fallback{{{WHO},pool="spot"}}',
             "values": "1x19 0x2 1x20"},
            {"series": f'elastic_tts_spot_fallback{{{WHO},pool="spot-b"}}',
             "values": "1x5 0x40"},
            OPERATOR],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": "ElasticTTSSpotFallbackTooLong", "exp_alerts": []},
            {"eval_time": "40m", "alertname": "ElasticTTSSpotFallbackTooLong", "exp_alerts": [
                _alert("ElasticTTSSpotFallbackTooLong", "warning",
                       {"namespace": NS, "service": SVC, "pool": "spot"},
                       {"summary": f"{NS}/{SVC}: spot pool spot has been in fallback for over 30m",
                        "description": "Spot capacity is missing or keeps being interrupted; "
                        "its fallbackTo pool carries the load at the on-demand price."})]},
        ],
    },
    "Prometheus unreadable for 6 minutes: fires; for 3: quiet": {
        "input_series": [
            {"series": f'elastic_tts_condition{{{WHO},condition="MetricsAvailable"}}',
             "values": "1x5 0x10"}, OPERATOR],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "ElasticTTSMetricsUnavailable", "exp_alerts": []},
            {"eval_time": "12m", "alertname": "ElasticTTSMetricsUnavailable", "exp_alerts": [
                _alert("ElasticTTSMetricsUnavailable", "warning", {"namespace": NS, "service": SVC},
                       {"summary": f"{NS}/{SVC} cannot read its load from Prometheus",
                        "description": "The operator has not had an answer from "
                        "spec.scaling.prometheus for 5m: replicas are held (or set to "
                        "fallbackReplicas), so the service no longer follows its load."})]},
        ],
    },
    "API errors every minute: fires; one conflict, or an invalid spec: quiet": {
        "input_series": [
            {"series": f'elastic_tts_reconcile_errors_total{{{WHO},kind="ApiError"}}',
             "values": "0+1x30"},
            {"series": f'elastic_tts_reconcile_errors_total{{{WHO},kind="Conflict"}}',
             "values": "0 1x30"},
            {"series": f'elastic_tts_reconcile_errors_total{{{WHO},kind="InvalidSpec"}}',
             "values": "0+1x30"},
            OPERATOR],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": "ElasticTTSReconcileErrors", "exp_alerts": [
                _alert("ElasticTTSReconcileErrors", "warning",
                       {"namespace": NS, "service": SVC, "kind": "ApiError"},
                       {"summary": f"The operator keeps failing to reconcile {NS}/{SVC} (ApiError)",
                        "description": "Reconcile steps have failed with ApiError for 15m; the "
                        "operator retries, but its decisions may not reach the Deployments."})]},
        ],
    },
    "an invalid spec for 8 minutes: fires": {
        "input_series": [
            {"series": f'elastic_tts_condition{{{WHO},condition="InvalidSpec"}}',
             "values": "1x10"}, OPERATOR],
        "alert_rule_test": [
            {"eval_time": "8m", "alertname": "ElasticTTSInvalidSpec", "exp_alerts": [
                _alert("ElasticTTSInvalidSpec", "warning", {"namespace": NS, "service": SVC},
                       {"summary": f"{NS}/{SVC} has a spec the operator refuses",
                        "description": "The InvalidSpec condition names each bad field; nothing "
                        "is rendered or scaled until the spec is fixed."})]},
        ],
    },
    "demand above every ceiling at peak: fires; in a shutdown window: quiet": {
        "input_series": [
            {"series": f"elastic_tts_demand{{{WHO}}}", "values": "500x20"},
            {"series": f"elastic_tts_capacity{{{WHO}}}", "values": "400x20"},
            {"series": f'elastic_tts_mode{{{WHO},mode="peak"}}', "values": "1x20"},
            {"series": f'elastic_tts_mode{{{WHO},mode="shutdown"}}', "values": "0x20"},
            {"series": f'elastic_tts_mode{{{WHO},mode="paused"}}', "values": "0x20"},
            {"series": f'elastic_tts_demand{{namespace="{NS}",service="night"}}',
             "values": "500x20"},
            {"series": f'elastic_tts_capacity{{namespace="{NS}",service="night"}}',
             "values": "0x20"},
            {"series": f'elastic_tts_mode{{namespace="{NS}",service="night",mode="shutdown"}}',
             "values": "1x20"},
            {"series": f'elastic_tts_mode{{namespace="{NS}",service="night",mode="paused"}}',
             "values": "0x20"},
            OPERATOR],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "ElasticTTSCapacityExhausted", "exp_alerts": [
                _alert("ElasticTTSCapacityExhausted", "warning", {"namespace": NS, "service": SVC},
                       {"summary": f"{NS}/{SVC} needs more replicas than its pools allow",
                        "description": "Demand has exceeded the capacity of every pool at its "
                        "maximum for 10m; requests queue, get refused or miss the SLO."})]},
        ],
    },
    "no operator scraped for 6 minutes: fires": {
        "input_series": [{"series": f'elastic_tts_condition{{{WHO},condition="Ready"}}',
                          "values": "1x10"}],
        "alert_rule_test": [
            {"eval_time": "6m", "alertname": "ElasticTTSOperatorDown", "exp_alerts": [
                _alert("ElasticTTSOperatorDown", "critical", {}, {
                    "summary": "No elastic-tts operator is being scraped",
                    "description": "Without the operator no TTSService scales, and no other "
                                   "elastic-tts alert can fire."})]},
        ],
    },
}


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": q.rule_groups()}))
    return path


@pytest.mark.parametrize("values", [{}, {"prometheusRule": {"slo": {"objective": 0.999},
                                                            "alertLabels": {"team": "tts"}}}],
                         ids=["defaults", "objective and labels"])
def test_promtool_accepts_the_rules(tmp_path: Path, values: dict[str, Any]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": q.rule_groups(values)}))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_plain_rule_file_is_the_charts_rule() -> None:
    plain = yaml.safe_load((q.cf.ROOT / "manifests" / "prometheus" / "rules.yaml").read_text())
    assert plain == {"groups": q.rule_groups()}


@pytest.mark.parametrize("name", TESTS)
def test_alert_fires_when_it_should(rules: Path, name: str) -> None:
    unit = rules.parent / "alerts_test.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m",
                                    "tests": [{"interval": "1m", **TESTS[name]}]},
                                   allow_unicode=True))
    done = subprocess.run([promtool(), "test", "rules", str(unit)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in q.rule_groups() for r in g["rules"] if "alert" in r}
    tested = {t["alertname"] for case in TESTS.values() for t in case["alert_rule_test"]
              if t["exp_alerts"]}
    assert alerts == tested
