"""Word start/end times for flite speech.

flite's `-psdur` prints each phone's end time but not which word it belongs to. We look each word's phones up
with flite's own `t2p` (same lexicon and letter-to-sound rules) and align that word-tagged phone string to the
spoken one with an edit-distance alignment, which absorbs the few post-lexical changes flite makes in context.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache

_WORD_EDGE = re.compile(r"^[^\w']+|[^\w']+$")


@dataclass(frozen=True)
class WordTime:
    word: str
    start: float  # seconds
    end: float


def spoken_words(text: str) -> list[str]:
    """The words of `text` as flite speaks them one by one (punctuation stripped, hyphens split)."""
    words = []
    for raw in text.replace("-", " ").split():
        word = _WORD_EDGE.sub("", raw)
        if word:
            words.append(word)
    return words


@lru_cache(maxsize=65536)
def word_phones(word: str) -> tuple[str, ...]:
    """Phones flite uses for `word` said alone, stress marks removed, pauses dropped."""
    out = subprocess.run(["t2p", word], capture_output=True, text=True, check=True).stdout
    return tuple(p.rstrip("012") for p in out.split() if p != "pau")


def align_words(text: str, phones: list[tuple[str, float]], duration: float) -> list[WordTime]:
    """Word times for `text` from flite's (phone, end time) list; times are clamped to `duration`."""
    words = spoken_words(text)
    spoken: list[tuple[str, float, float]] = []  # (phone, start, end), pauses removed
    prev_end = 0.0
    for phone, end in phones:
        end = min(end, duration)
        if phone != "pau":
            spoken.append((phone, prev_end, end))
        prev_end = end
    expected: list[tuple[str, int]] = [(p, i) for i, w in enumerate(words) for p in word_phones(w)]
    owner = _align(expected, [p for p, _, _ in spoken])
    result = []
    cursor = spoken[0][1] if spoken else 0.0
    for i, word in enumerate(words):
        mine = [k for k, w in enumerate(owner) if w == i]
        if mine:
            start, end = spoken[mine[0]][1], spoken[mine[-1]][2]
        else:  # the word lost all its phones in alignment: give it an empty span where it would be
            start = end = cursor
        result.append(WordTime(word, round(start, 4), round(end, 4)))
        cursor = end
    return result


def _align(expected: list[tuple[str, int]], spoken: list[str]) -> list[int]:
    """For each spoken phone, the index of the word it belongs to (Levenshtein alignment, ties to match)."""
    n, m = len(expected), len(spoken)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        exp_phone = expected[i - 1][0]
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            sub = prev[j - 1] + (0 if exp_phone == spoken[j - 1] else 1)
            row[j] = min(sub, prev[j] + 1, row[j - 1] + 1)
    owner = [-1] * m
    i, j = n, m
    while j > 0:
        if i > 0 and cost[i][j] == cost[i - 1][j - 1] + (0 if expected[i - 1][0] == spoken[j - 1] else 1):
            owner[j - 1] = expected[i - 1][1]
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:  # an inserted spoken phone joins the word before it (or the first word)
            owner[j - 1] = expected[i - 1][1] if i > 0 else (expected[0][1] if expected else -1)
            j -= 1
    return owner
