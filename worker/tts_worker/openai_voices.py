"""How OpenAI's voice names and `instructions` map onto this engine's voices and emotions.

Voices: a catalogue voice name is taken as it is. OpenAI's names are dealt onto the
catalogue in OpenAI's order, the i-th name to catalogue voice i mod n, so each one always
means the same voice on the same engine; GET /api/voices lists the mapping
(`openai_voices`).

Emotions: the extension field `emotion` takes a catalogue emotion by name. Otherwise the
first catalogue emotion that `instructions` names, in English or Chinese (the words below),
is used, and the default emotion when it names none.
"""

from __future__ import annotations

from tts_worker.engines import Catalog

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")

EMOTION_WORDS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "中性", "平淡"),
    "happy": ("happy", "cheerful", "joyful", "开心", "高兴", "快乐", "愉快"),
    "sad": ("sad", "悲伤", "伤心", "难过"),
    "angry": ("angry", "生气", "愤怒"),
    "calm": ("calm", "平静", "冷静"),
    "fear": ("fear", "afraid", "scared", "害怕", "恐惧"),
    "hate": ("hate", "disgust", "厌恶", "讨厌"),
    "surprise": ("surprise", "surprised", "惊讶", "吃惊"),
    "arousal": ("arousal", "excited", "兴奋", "激动"),
}


def openai_voice_map(catalog: Catalog) -> dict[str, str]:
    voices = catalog.voices
    return {name: voices[i % len(voices)] for i, name in enumerate(OPENAI_VOICES)}


def resolve_voice(name: str, catalog: Catalog) -> str | None:
    if name in catalog.voices:
        return name
    return openai_voice_map(catalog).get(name.lower())


def emotion_from_instructions(instructions: str, catalog: Catalog) -> str:
    lowered = instructions.lower()
    for emotion in catalog.emotions:
        if any(word in lowered for word in EMOTION_WORDS.get(emotion, (emotion,))):
            return emotion
    return catalog.default_emotion
