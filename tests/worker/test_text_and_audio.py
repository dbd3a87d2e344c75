"""Text splitting, WAV parsing and conversion, and the LRU cache."""

from __future__ import annotations

import struct

import pytest

from tts_worker.audio import Audio, AudioError, change_tempo, concat, encode, read_wav, to_wav
from tts_worker.cache import AudioCache, CachedAudio
from tts_worker.text import chunk_text, first_forbidden_char, halve, split_sentences


@pytest.mark.parametrize(("text", "limit", "chunks"), [
    ("今天天气很好。我们去公园散步吧！好的，走吧。", 10,
     ["今天天气很好。", "我们去公园散步吧！", "好的，走吧。"]),
    ("今天天气很好。我们去公园散步吧！好的，走吧。", 100,
     ["今天天气很好。我们去公园散步吧！好的，走吧。"]),
    ("Hello there. How are you? Fine.", 30, ["Hello there. How are you?", "Fine."]),
    ("一二三四五六七八九十一二三四五六七八九十，一二三四五", 8,
     ["一二三四五六七八", "九十一二三四五六", "七八九十，", "一二三四五"]),
    ("第一行\n第二行", 4, ["第一行", "第二行"]),
    ("  ", 10, []),
])
def test_chunk_text_cuts_at_sentence_boundaries(text: str, limit: int,
                                               chunks: list[str]) -> None:
    result = chunk_text(text, limit)
    assert result == chunks
    assert all(len(chunk) <= limit for chunk in result)


def test_chunks_keep_every_character() -> None:
    text = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少？" * 20
    chunks = chunk_text(text, 37)
    assert "".join(chunks) == text
    assert all(len(c) <= 37 for c in chunks)


def test_split_sentences() -> None:
    assert split_sentences("你好！你是谁？我是小明。") == ["你好！", "你是谁？", "我是小明。"]


@pytest.mark.parametrize(("text", "pieces"), [
    ("今天天气很好，我们去公园散步吧", ["今天天气很好，", "我们去公园散步吧"]),
    ("一二三四", ["一二", "三四"]),
    ("一", []),
])
def test_halve(text: str, pieces: list[str]) -> None:
    assert halve(text) == pieces


@pytest.mark.parametrize(("text", "found"), [
    ("普通的文字\n第二行\t制表", None),
    ("bell\u0007", (4, "\u0007")),
    ("del\u007f", (3, "\u007f")),
    ("c1\u009b", (2, "\u009b")),
    ("lone\ud83d", (4, "\ud83d")),
    ("emoji 😀 and zero-width\u200b joiner", None),
])
def test_forbidden_characters(text: str, found: tuple[int, str] | None) -> None:
    assert first_forbidden_char(text) == found


def test_read_wav_round_trip() -> None:
    audio = Audio(struct.pack("<4h", 1, -2, 3, -4), 24000)
    assert read_wav(to_wav(audio)) == audio
    assert audio.duration == pytest.approx(4 / 24000)


def test_read_wav_accepts_a_streamed_header_with_placeholder_sizes() -> None:
    wav = bytearray(to_wav(Audio(b"\x01\x00" * 100, 22050)))
    wav[4:8] = struct.pack("<I", 0x7FFFF024)  # what espeak-ng --stdout writes
    wav[40:44] = struct.pack("<I", 0x7FFFF000)
    assert read_wav(bytes(wav)) == Audio(b"\x01\x00" * 100, 22050)


def test_read_wav_skips_unknown_chunks() -> None:
    wav = to_wav(Audio(b"\x02\x00" * 10, 16000))
    with_list = wav[:36] + b"LIST" + struct.pack("<I", 3) + b"abc\x00" + wav[36:]
    assert read_wav(with_list).pcm == b"\x02\x00" * 10


@pytest.mark.parametrize("data", [b"", b"RIFF\x00\x00\x00\x00WAVE", b"ID3 not a wav at all"])
def test_read_wav_rejects_garbage(data: bytes) -> None:
    with pytest.raises(AudioError):
        read_wav(data)


def test_concat_refuses_mixed_sample_rates() -> None:
    assert concat([Audio(b"\x00\x00", 16000), Audio(b"\x01\x00", 16000)]).frames == 2
    with pytest.raises(AudioError, match="different sample rates"):
        concat([Audio(b"\x00\x00", 16000), Audio(b"\x00\x00", 24000)])


def test_change_tempo_shortens_without_changing_the_rate() -> None:
    tone = Audio(b"".join(struct.pack("<h", (i % 40) * 500 - 10000) for i in range(16000)),
                 16000)
    faster = change_tempo(tone, 2.0)
    assert faster.sample_rate == 16000
    assert faster.duration == pytest.approx(0.5, abs=0.05)
    assert change_tempo(tone, 1.0) is tone


def test_encode_mp3_and_unknown_format() -> None:
    audio = Audio(b"\x00\x00" * 16000, 16000)
    assert encode(audio, "mp3")[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xe3")
    with pytest.raises(AudioError):
        encode(audio, "flac")


def _item(size: int) -> CachedAudio:
    return CachedAudio(b"x" * size, "audio/wav", 1.0, 0.1, 16000)


def test_cache_evicts_the_least_recently_used() -> None:
    cache = AudioCache(max_entries=2, max_bytes=1000)
    a, b, c = (("a", "v", "e", 1.0, "wav"), ("b", "v", "e", 1.0, "wav"),
               ("c", "v", "e", 1.0, "wav"))
    cache.put(a, _item(1))
    cache.put(b, _item(1))
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, _item(1))
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None


def test_cache_respects_its_byte_budget() -> None:
    cache = AudioCache(max_entries=10, max_bytes=100)
    for i in range(5):
        cache.put((str(i), "v", "e", 1.0, "wav"), _item(40))
    assert len(cache) == 2
    cache.put(("big", "v", "e", 1.0, "wav"), _item(101))
    assert cache.get(("big", "v", "e", 1.0, "wav")) is None
