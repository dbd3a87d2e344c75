"""Text rules shared by validation and the engines: what may be spoken, and how long text
is cut at sentence boundaries."""

from __future__ import annotations

import re
import unicodedata

# Line breaks and tabs are ordinary in pasted text; every other control character is not.
ALLOWED_CONTROLS = frozenset("\t\n\r")

# Sentence ends (Chinese and Western), then clause breaks for sentences still too long.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])|(?<=\.)(?=\s)")
_CLAUSE_END = re.compile(r"(?<=[，,、：:])")


def first_forbidden_char(text: str) -> tuple[int, str] | None:
    """The position and character of the first control or surrogate code point, if any.

    Lone surrogates arrive through JSON escapes such as "\\ud800"; they cannot be encoded,
    so they must be refused before anything tries to.
    """
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if (category == "Cc" and char not in ALLOWED_CONTROLS) or category == "Cs":
            return index, char
    return None


def split_sentences(text: str) -> list[str]:
    return [part for part in (piece.strip() for piece in _SENTENCE_END.split(text)) if part]


def chunk_text(text: str, limit: int) -> list[str]:
    """Cut text into chunks of at most `limit` characters, at sentence boundaries.

    Sentences are packed greedily; a sentence longer than the limit is cut at clause
    breaks, and a clause still too long at the limit itself.
    """
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        for index, piece in enumerate(_fit(sentence, limit)):
            # Western sentences were separated by a space that splitting removed.
            sep = " " if index == 0 and current[-1:].isascii() and piece[0].isascii() else ""
            if current and len(current) + len(sep) + len(piece) > limit:
                chunks.append(current)
                current, sep = "", ""
            current += (sep if current else "") + piece
    if current:
        chunks.append(current)
    return chunks


def halve(text: str) -> list[str]:
    """Two smaller pieces of one chunk, cut at the boundary nearest the middle.

    Used to retry after a CUDA out-of-memory error; returns [] when the text is too short to
    cut further.
    """
    if len(text) < 2:
        return []
    middle = len(text) // 2
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    cuts += [m.end() for m in _CLAUSE_END.finditer(text) if 0 < m.end() < len(text)]
    cut = min(cuts, key=lambda c: abs(c - middle)) if cuts else middle
    pieces = [text[:cut].strip(), text[cut:].strip()]
    return [piece for piece in pieces if piece]


def _fit(sentence: str, limit: int) -> list[str]:
    if len(sentence) <= limit:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in (c for c in _CLAUSE_END.split(sentence) if c):
        while len(clause) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(clause[:limit])
            clause = clause[limit:]
        if current and len(current) + len(clause) > limit:
            pieces.append(current)
            current = ""
        current += clause
    if current:
        pieces.append(current)
    return pieces


def stream_chunks(text: str, limit: int) -> list[str]:
    """Chunks for streaming: the first sentence alone (cut at a clause if it is longer than
    half the limit), so that the first audio comes soon; then chunks of up to `limit`."""
    sentences = split_sentences(text)
    if not sentences:
        return [text] if text.strip() else []
    head = _fit(sentences[0], max(8, limit // 2))[0]
    # The pieces of a sentence are substrings of it, so the rest is what follows the head.
    rest = text[text.index(head) + len(head):]
    return [head, *chunk_text(rest, limit)]
