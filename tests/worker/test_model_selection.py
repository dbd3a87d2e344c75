"""The spec reaches the worker: TTS_MODEL selects what the engine loads (a local path, or an
id baked under TTS_MODEL_ROOT; never a download), TTS_VOICES limits the catalogue, and a
worker whose engine cannot start stays up and says why on /readyz (and to kubelet)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.worker import tiny_tts as tiny
from tests.worker.conftest import AppFactory, state_of
from tests.worker.test_modelscope import no_network  # noqa: F401 - the fixture, autouse

BAKED = "iic/speech_tiny_tts_zh-cn_16k"


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))


@pytest.fixture
def model_root(tmp_path: Path) -> Path:
    """An image's model root with one model baked in at <root>/<org>/<name>."""
    root = tmp_path / "models"
    tiny.make_model_dir(root / BAKED, voices=("tiny_f", "tiny_m", "tiny_x"))
    return root


def modelscope(make_app: AppFactory, **config: object) -> Flask:
    return make_app(ENGINE="modelscope", DEVICE="cpu", **config)


def test_an_id_baked_into_the_image_is_loaded(make_app: AppFactory, model_root: Path) -> None:
    app = modelscope(make_app, MODEL=BAKED, MODEL_ROOT=str(model_root))
    assert app.test_client().get("/readyz").status_code == 200
    assert app.test_client().post("/tts", json={"text": "你好"}).status_code == 200


def test_damo_and_iic_name_the_same_model(make_app: AppFactory, model_root: Path) -> None:
    app = modelscope(make_app, MODEL=BAKED.replace("iic/", "damo/"),
                     MODEL_ROOT=str(model_root))
    assert app.test_client().get("/readyz").status_code == 200


def test_a_local_path_is_loaded(make_app: AppFactory, tmp_path: Path) -> None:
    directory = tiny.make_model_dir(tmp_path / "mounted")
    app = modelscope(make_app, MODEL=str(directory))
    assert app.test_client().get("/readyz").status_code == 200


def test_model_dir_wins_over_model(make_app: AppFactory, tmp_path: Path) -> None:
    directory = tiny.make_model_dir(tmp_path / "explicit")
    app = modelscope(make_app, MODEL="iic/not-there", MODEL_DIR=str(directory))
    assert app.test_client().get("/readyz").status_code == 200


@pytest.mark.parametrize(("model", "reason"), [
    ("iic/speech_other_model", "is not in this image"),
    ("not an id", "is neither a path nor a model id"),
    ("/nowhere/at/all", "no such directory"),
])
def test_a_model_the_image_lacks_is_the_readiness_answer(make_app: AppFactory, model_root: Path,
                                                         model: str, reason: str) -> None:
    app = modelscope(make_app, MODEL=model, MODEL_ROOT=str(model_root))
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    payload = ready.get_json()
    assert payload["error"] == "engine_failed" and reason in payload["message"]
    if "not in this image" in reason:
        assert BAKED in payload["message"]  # it says what the image has
    assert client.get("/healthz").status_code == 503
    refused = client.post("/tts", json={"text": "你好"})
    assert refused.status_code == 503 and refused.get_json()["error"] == "engine_failed"


def test_voices_limit_the_catalogue(make_app: AppFactory, model_root: Path) -> None:
    app = modelscope(make_app, MODEL=BAKED, MODEL_ROOT=str(model_root), VOICES="tiny_x,tiny_f")
    catalog = app.test_client().get("/api/voices").get_json()
    assert catalog["voices"] == ["tiny_x", "tiny_f"] and catalog["default_voice"] == "tiny_x"
    assert app.test_client().post("/tts", json={"text": "好", "voice": "tiny_m"}).status_code \
        == 400


def test_a_voice_the_model_lacks_is_the_readiness_answer(make_app: AppFactory,
                                                         model_root: Path) -> None:
    app = modelscope(make_app, MODEL=BAKED, MODEL_ROOT=str(model_root), VOICES="zhitian_emo")
    message = app.test_client().get("/readyz").get_json()["message"]
    assert "zhitian_emo" in message and "tiny_f" in message


def test_espeak_voices_are_limited_too(make_app: AppFactory) -> None:
    app = make_app(ENGINE="espeak", VOICES="mandarin-male")
    assert app.test_client().get("/api/voices").get_json()["voices"] == ["mandarin-male"]


@pytest.fixture
def termination_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "termination-log"
    path.write_text("")  # kubelet creates the file; the worker only writes it
    yield path


def test_the_reason_is_written_where_kubelet_reads_it(make_app: AppFactory, model_root: Path,
                                                      termination_log: Path) -> None:
    app = modelscope(make_app, MODEL="iic/speech_other_model", MODEL_ROOT=str(model_root),
                     TERMINATION_LOG=str(termination_log))
    assert state_of(app).status == "failed"
    text = termination_log.read_text()
    assert text.startswith("engine modelscope failed to load: ") and "not in this image" in text


def test_no_termination_file_is_created_outside_kubernetes(make_app: AppFactory,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "absent"
    app = modelscope(make_app, MODEL="iic/x", MODEL_ROOT=str(tmp_path), TERMINATION_LOG=str(path))
    assert state_of(app).status == "failed" and not path.exists()
