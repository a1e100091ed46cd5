"""The phone inventory of the linguistic tokenizer's CTC targets: flite's US English phones.

Transcripts become phones with flite's own lexicon and letter-to-sound rules (`t2p`), the same ones that made
the corpus's flite speech; espeak-ng voices pronounce a few words differently, which CTC tolerates.
"""

from __future__ import annotations

from aqaa.data.align import spoken_words, word_phones

PHONES: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "b", "ch", "d", "dh", "eh", "el", "em", "en", "er", "ey",
    "f", "g", "hh", "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh",
)
BLANK = 0  # CTC blank; phone i has id i + 1
PHONE_ID = {p: i + 1 for i, p in enumerate(PHONES)}
VOCAB_SIZE = len(PHONES) + 1


def word_phone_ids(word: str) -> list[int]:
    """Phone ids of one word; raises ValueError for a phone outside the inventory."""
    ids = []
    for phone in word_phones(word):
        if phone not in PHONE_ID:
            raise ValueError(f"word {word!r} has phone {phone!r}, which is not in the inventory")
        ids.append(PHONE_ID[phone])
    return ids


def text_to_phone_ids(text: str) -> tuple[list[int], list[tuple[str, int, int]]]:
    """Phone ids of `text` and, per spoken word, (word, first phone index, end phone index)."""
    ids: list[int] = []
    words = []
    for word in spoken_words(text):
        start = len(ids)
        ids.extend(word_phone_ids(word))
        words.append((word, start, len(ids)))
    return ids, words
