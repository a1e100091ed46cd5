"""Finding expected words in an ASR transcript, tolerant of the judge's errors.

The judge (pocketsphinx) often writes a homophone or a near miss: "to" for "two", "cell" for "sell", "plenty"
for "twenty". Matching therefore compares pronunciations, not spellings. Every word becomes its phones from the
judge's own pronouncing dictionary (flite's letter-to-sound rules for the few words it lacks). An expected phrase
is found where a run of transcript words is within a small phone edit distance of it. Numbers are matched
exactly: homophones are allowed, near misses are not ("thirteen" and "thirty" are one phone apart).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from aqaa.judge import normalize_text
from aqaa.text import number_to_words

TOLERANCE = 0.34  # phone edits per phone of the expected phrase; 1 edit in 3 phones
MAX_EDITS = 2  # and never more, so a long phrase cannot match a different phrase that shares its start
EXACT_BELOW = 3  # phrases this short (in phones) must match exactly


@functools.cache
def _dictionary() -> dict[str, tuple[tuple[str, ...], ...]]:
    import pocketsphinx

    path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
    entries: dict[str, list[tuple[str, ...]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            entries.setdefault(re.sub(r"\(\d+\)$", "", word), []).append(tuple(phones))
    return {w: tuple(p) for w, p in entries.items()}


@functools.cache
def _letter_to_sound(word: str) -> tuple[str, ...]:
    """flite's pronunciation of a word the dictionary lacks, in the dictionary's phone set."""
    if shutil.which("t2p") is None:
        return tuple(word.upper())  # no flite: spell it, so the word still only matches itself
    out = subprocess.run(["t2p", word], capture_output=True, text=True, check=False).stdout.split()
    return tuple("AH" if p == "ax" else re.sub(r"\d", "", p).upper() for p in out if p != "pau")


def pronunciations(word: str) -> tuple[tuple[str, ...], ...]:
    """Every dictionary pronunciation of a (normalised, lower-case) word."""
    return _dictionary().get(word) or (_letter_to_sound(word),)


def tokens(text: str) -> list[str]:
    """Normalised words of a transcript or key ("November's" -> "november's", "12" -> "twelve")."""
    return normalize_text(text).split()


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@functools.cache
def _phone_strings(words: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Every pronunciation of a word sequence (the product of each word's variants, capped)."""
    strings: list[tuple[str, ...]] = [()]
    for word in words:
        strings = [s + p for s in strings for p in pronunciations(word)][:16]
    return tuple(strings)


def _best_edits(words: list[str], phrase: list[str], bound: int | None = None) -> tuple[int, int]:
    """(phone edits, phones of `phrase`) for the closest pair of pronunciations. With `bound`, pairs whose
    lengths alone differ by more than `bound` edits are skipped (the result is then at least bound + 1)."""
    best = (1 << 30, 1)
    for a in _phone_strings(tuple(words)):
        for b in _phone_strings(tuple(phrase)):
            if bound is not None and abs(len(a) - len(b)) > bound:
                best = min(best, (bound + 1, len(b)))
                continue
            best = min(best, (_edit_distance(a, b), len(b)))
    return best


def phrase_distance(words: list[str], phrase: list[str]) -> float:
    """Phone edit distance between two word sequences, per phone of `phrase` (closest pronunciations)."""
    edits, length = _best_edits(words, phrase)
    return edits / max(1, length)


def _close_enough(words: list[str], phrase: list[str]) -> float | None:
    """The distance of `words` to `phrase` when they count as a match, else None."""
    edits, length = _best_edits(words, phrase, bound=MAX_EDITS)
    if edits == 0:
        return 0.0
    if length < EXACT_BELOW or edits > MAX_EDITS or edits / length > TOLERANCE:
        return None
    return edits / length


@dataclass(frozen=True)
class Mention:
    position: int  # index of the first transcript word of the match
    option: str  # which option was heard
    distance: float


def mentions(transcript: list[str], options: dict[str, list[str]]) -> list[Mention]:
    """Where each option (name -> its phrases) is heard in the transcript, left to right.

    At each position the closest phrase (within the tolerance) wins; a match consumes its words, so one word
    is never two mentions."""
    phrases = [(name, tokens(p)) for name, alternatives in options.items() for p in alternatives]
    found, i = [], 0
    while i < len(transcript):
        best: tuple[float, int, str] | None = None
        for name, phrase in phrases:
            for width in range(1, len(phrase) + 2):  # the judge may split or merge words
                window = transcript[i:i + width]
                if len(window) < width:
                    continue
                d = _close_enough(window, phrase)
                # closest first; on a tie the wider window, so "new delhi" beats "new"
                if d is not None and (best is None or (d, -width) < (best[0], -best[1])):
                    best = (d, width, name)
        if best is None:
            i += 1
            continue
        found.append(Mention(i, best[2], best[0]))
        i += best[1]
    return found


def contains(transcript: list[str], phrase: str) -> bool:
    """Is `phrase` heard anywhere in the transcript?"""
    return bool(mentions(transcript, {phrase: [phrase]}))


# ------------------------------------------------------------------------------------------------ numbers

_UNITS = {number_to_words(n): n for n in range(20)}
_TENS = {number_to_words(n): n for n in range(20, 100, 10)}


@functools.cache
def _number_word(word: str) -> str | None:
    """The number word that `word` is, or sounds exactly like ("to" -> "two", "for" -> "four")."""
    if word in _UNITS or word in _TENS or word == "hundred":
        return word
    sounds = set(pronunciations(word))
    for candidate in [*_UNITS, *_TENS, "hundred"]:
        if sounds & set(pronunciations(candidate)):
            return candidate
    return None


def numbers(transcript: list[str]) -> list[int]:
    """The numbers spoken in a transcript, in order ("seven plus five is twelve" -> [7, 5, 12]).

    Words are read as in `aqaa.text.number_to_words`: "one hundred five", "twenty one"; "seven five" is two
    numbers."""
    values: list[int] = []
    current: int | None = None  # the number being read
    last = ""  # kind of the previous number word: "unit", "teen", "tens", "hundred"
    for word in transcript:
        w = _number_word(word)
        if w is None:
            if current is not None:
                values.append(current)
            current, last = None, ""
            continue
        if w == "hundred":
            if current is not None and last == "unit" and current < 10:
                current, last = current * 100, "hundred"
            continue  # a bare "hundred" without a digit before it is not read as a number
        kind = "tens" if w in _TENS else ("unit" if _UNITS[w] < 10 else "teen")
        value = _TENS.get(w, _UNITS.get(w, 0))
        joins = current is not None and (
            (last == "tens" and kind == "unit" and value > 0)
            or (last == "hundred" and kind in ("unit", "teen", "tens")))
        if joins:
            current += value
            last = kind
            continue
        if current is not None:
            values.append(current)
        current, last = value, kind
    if current is not None:
        values.append(current)
    return values
