"""Audio as 16-bit mono PCM: WAV in and out, joining, tempo, MP3.

Engines hand back whole WAV files (espeak-ng writes one to stdout, ModelScope returns
`output_wav`). The sample rate is read from each file's header, never assumed.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# pcm is raw signed 16-bit little-endian mono samples (OpenAI's `pcm`); its rate goes in a
# header, X-Sample-Rate.
FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "pcm": "audio/pcm"}
# The RIFF and data sizes of a WAV whose length is not known yet, as streaming writers
# (espeak-ng --stdout among them) put them; readers take the data to run to the end.
STREAMING_SIZE = 0xFFFFFFFF


class AudioError(ValueError):
    """Bytes that should be audio are not, or a conversion failed."""


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # signed 16-bit little-endian, mono
    sample_rate: int

    @property
    def frames(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def read_wav(data: bytes) -> Audio:
    """Parse a RIFF/WAVE file of 16-bit PCM, mono.

    Walks the chunks itself because streamed WAVs (espeak-ng --stdout) carry placeholder
    sizes in the RIFF and data headers: the data chunk then runs to the end of the bytes.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioError("truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            # 0xFFFE is WAVE_FORMAT_EXTENSIBLE, whose PCM subformat reads the same.
            if tag not in (1, 0xFFFE) or bits != 16 or channels != 1:
                raise AudioError(f"unsupported WAV: format {tag}, {bits}-bit, "
                                 f"{channels} channels (need 16-bit PCM mono)")
            if rate <= 0:
                raise AudioError("WAV header has no sample rate")
            end = min(body + size, len(data))
            pcm = data[body:end]
            return Audio(pcm[: len(pcm) - len(pcm) % 2], rate)
        pos = body + size + (size & 1)
    raise AudioError("WAV has no data chunk")


def to_wav(audio: Audio) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.pcm)
    return out.getvalue()


def concat(parts: Iterable[Audio]) -> Audio:
    items = list(parts)
    if not items:
        raise AudioError("nothing to join")
    rates = {part.sample_rate for part in items}
    if len(rates) != 1:
        raise AudioError(f"cannot join audio at different sample rates {sorted(rates)}")
    return Audio(b"".join(part.pcm for part in items), items[0].sample_rate)


def sox_available() -> bool:
    return shutil.which("sox") is not None


def change_tempo(audio: Audio, factor: float, timeout: float = 60.0) -> Audio:
    """Speed speech up or down without changing its pitch (sox's WSOLA `tempo -s`)."""
    if abs(factor - 1.0) < 1e-6:
        return audio
    sox = shutil.which("sox")
    if sox is None:
        raise AudioError("changing the speed needs sox, which is not installed")
    args = [sox, "-q", "-t", "wav", "-", "-t", "wav", "-b", "16", "-", "tempo", "-s",
            f"{factor:.4f}"]
    try:
        done = subprocess.run(args, input=to_wav(audio), capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"sox tempo took longer than {timeout:g} s") from exc
    if done.returncode != 0:
        raise AudioError(f"sox tempo failed: {done.stderr.decode(errors='replace').strip()}")
    return read_wav(done.stdout)


def mp3_available() -> bool:
    try:
        import lameenc  # noqa: F401
    except ImportError:
        return False
    return True


def encode(audio: Audio, fmt: str) -> bytes:
    if fmt == "wav":
        return to_wav(audio)
    if fmt == "pcm":
        return audio.pcm
    if fmt == "mp3":
        encoder = _mp3_encoder(audio.sample_rate)
        return bytes(encoder.encode(audio.pcm) + encoder.flush())
    raise AudioError(f"unknown format {fmt!r}")


def streaming_wav_header(sample_rate: int) -> bytes:
    """A WAV header for data whose length is not known yet (see STREAMING_SIZE)."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", STREAMING_SIZE) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", STREAMING_SIZE - 36))


class StreamEncoder:
    """Encodes audio piece by piece, for a chunked response: the first piece fixes the
    sample rate; `finish` returns what the format still holds back (MP3's last frames)."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise AudioError(f"unknown format {fmt!r}")
        self.format = fmt
        self.sample_rate: int | None = None
        self._mp3: Any = None

    def encode(self, audio: Audio) -> bytes:
        head = b""
        if self.sample_rate is None:
            self.sample_rate = audio.sample_rate
            if self.format == "wav":
                head = streaming_wav_header(audio.sample_rate)
            elif self.format == "mp3":
                self._mp3 = _mp3_encoder(audio.sample_rate)
        elif audio.sample_rate != self.sample_rate:
            raise AudioError(f"a stream cannot change its sample rate ({self.sample_rate} "
                             f"then {audio.sample_rate})")
        if self._mp3 is not None:
            return head + bytes(self._mp3.encode(audio.pcm))
        return head + audio.pcm

    def finish(self) -> bytes:
        return bytes(self._mp3.flush()) if self._mp3 is not None else b""


def _mp3_encoder(sample_rate: int) -> Any:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(2)
    return encoder
