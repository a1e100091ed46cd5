"""Text helpers shared by the corpus builder and the ASR judge: numbers spoken as words."""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def digit_word(d: int) -> str:
    """The word for one digit, 0-9."""
    return _ONES[d]


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return words
    if n >= 20:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    elif n or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int, ordinal: bool = False) -> str:
    """Spell a non-negative integer in American English without "and" or hyphens: 105 -> "one hundred five".

    This is how the corpus writes numbers and how flite speaks them. Numbers of a trillion or more are read
    digit by digit. ``ordinal=True`` gives "third", "twenty first", "one hundredth", ...
    """
    if n < 0:
        raise ValueError(f"number_to_words needs n >= 0, got {n}")
    if n >= 10**12:
        words = [_ONES[int(d)] for d in str(n)]
    else:
        words = []
        for scale, name in _SCALES:
            if n >= scale:
                words += _below_thousand(n // scale) + [name]
                n %= scale
        if n or not words:
            words += _below_thousand(n)
    if ordinal:
        last = words[-1]
        if last in _ORDINAL_IRREGULAR:
            last = _ORDINAL_IRREGULAR[last]
        elif last.endswith("y"):
            last = last[:-1] + "ieth"
        else:
            last += "th"
        words[-1] = last
    return " ".join(words)
