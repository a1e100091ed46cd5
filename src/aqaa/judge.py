"""Independent ASR judge: offline pocketsphinx transcription, text normalisation and WER.

The judge must be a pure function of the audio. pocketsphinx by default carries front-end state
from one utterance to the next (the noise-removal estimate and the cepstral-mean (CMN) estimate),
so the same clip could be transcribed differently depending on what was decoded before it. We
avoid that by (1) resetting the feature front end before every utterance (``Decoder.reinit_feat``,
which rebuilds the noise and CMN state from the config; it costs well under a millisecond) and
(2) decoding each clip in one ``process_raw(..., full_utt=True)`` call, which makes pocketsphinx use
batch CMN computed over that whole clip. One more piece of state survives both: the acoustic
model's top-N Gaussian search is seeded with the previous frame's top-N, even across utterances.
That only changes results on exact score ties, which happen on digital silence (all-zero frames),
so we enable pocketsphinx's +-1 LSB dither with a fixed seed; ``reinit_feat`` re-seeds it, so the
dither noise is the same every time a clip is decoded. Loading the acoustic and language models
is the slow part (~0.5 s), so one decoder is cached per process and reused.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jiwer
import numpy as np

from aqaa.audio import DEFAULT_MAX_SECONDS, check_waveform, load_audio, peak_normalize, resample
from aqaa.text import digit_word, number_to_words

if TYPE_CHECKING:
    from pocketsphinx import Decoder

__all__ = ["normalize_text", "transcribe", "transcribe_many", "wer"]

JUDGE_SAMPLE_RATE = 16000  # the packaged en-us acoustic model is 16 kHz wideband
_DITHER_SEED = 1

_decoder: Decoder | None = None
_decoder_pid: int | None = None
_lock = threading.Lock()


def _get_decoder() -> Decoder:
    """Return the per-process decoder, building it on first use (or after a fork)."""
    global _decoder, _decoder_pid
    # A decoder inherited across fork() shares state with the parent; build a fresh one per process.
    if _decoder is None or _decoder_pid != os.getpid():
        # Imported here so that `import aqaa.judge` stays cheap for code that only normalises text.
        import pocketsphinx

        # dither + fixed seed: see the module docstring (ties on digital silence). FATAL: pocketsphinx
        # logs harmless ERRORs (e.g. "Couldn't find <s>") on near-empty clips.
        _decoder = pocketsphinx.Decoder(
            samprate=JUDGE_SAMPLE_RATE, dither=True, seed=_DITHER_SEED, loglevel="FATAL"
        )
        _decoder_pid = os.getpid()
    return _decoder


_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_ALT_PRON = re.compile(r"\(\d+\)$")  # dictionary alternates come back as "word(2)"


def _clean_hyp(hypstr: str) -> str:
    words = []
    for tok in hypstr.split():
        if _FILLER.match(tok):
            continue
        words.append(_ALT_PRON.sub("", tok).lower())
    return " ".join(words)


def transcribe(wav: np.ndarray | str | Path, sample_rate: int = 16000) -> str:
    """Transcribe speech with pocketsphinx's packaged English model, offline.

    ``wav`` is a waveform at ``sample_rate`` (mono or multichannel, see
    :func:`aqaa.audio.check_waveform`) or a path to an audio file (its own rate is used and
    ``sample_rate`` is ignored). Audio is resampled to 16 kHz and peak-normalised, so a file and
    the array loaded from it give the same result. Returns lower-case words separated by single
    spaces, without fillers such as ``<sil>`` or ``[noise]``; silence gives ``""``.

    Deterministic and order-independent: the result depends only on the audio. Thread-safe
    (decoding is serialised on a lock, so threads give no speed-up; use processes for that).
    """
    if isinstance(wav, (str, Path)):
        audio = load_audio(wav, JUDGE_SAMPLE_RATE, normalize=True)
    else:
        audio = check_waveform(wav, "<array>", max_seconds=DEFAULT_MAX_SECONDS, sample_rate=sample_rate)
        # Same steps as load_audio(normalize=True), so a file and its loaded array decode alike.
        audio = peak_normalize(resample(audio, sample_rate, JUDGE_SAMPLE_RATE))
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    return _decode_pcm(pcm)[0]


def _decode_pcm(pcm: bytes) -> tuple[str, float]:
    """Decode one utterance of 16 kHz int16 PCM; returns (clean text, search score).

    The score is returned so tests can check that decoding is bit-for-bit independent of history.
    """
    with _lock:
        decoder = _get_decoder()
        decoder.reinit_feat()  # fresh noise/CMN state: no memory of earlier utterances
        decoder.start_utt()
        try:
            decoder.process_raw(pcm, no_search=False, full_utt=True)  # full_utt -> batch CMN on this clip
        finally:
            decoder.end_utt()
        hyp = decoder.hyp()
    if hyp is None:
        return "", 0.0
    return _clean_hyp(hyp.hypstr), float(hyp.score)


def transcribe_many(
    wavs: Iterable[np.ndarray | str | Path], sample_rate: int = 16000, progress: bool = False
) -> list[str]:
    """Transcribe each item of ``wavs`` with :func:`transcribe` (results in input order)."""
    items = wavs
    if progress:
        from tqdm import tqdm

        items = tqdm(wavs, desc="transcribe", unit="utt")
    return [transcribe(w, sample_rate) for w in items]


# ---------------------------------------------------------------------------------------------
# Text normalisation

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
# Symbols that a TTS voice reads aloud; mapping them keeps "3 + 4 = 7" comparable to the spoken words.
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals "}
# Spelling variants are not recognition errors: the judge's dictionary writes American English.
_BRITISH_TO_AMERICAN = {
    "colour": "color", "colours": "colors", "coloured": "colored", "favourite": "favorite",
    "neighbour": "neighbor", "neighbours": "neighbors", "grey": "gray", "centre": "center",
    "metre": "meter", "theatre": "theater", "travelled": "traveled", "honour": "honor",
    "behaviour": "behavior", "flavour": "flavor", "harbour": "harbor", "organise": "organize",
    "realise": "realize", "mum": "mom",
}  # fmt: skip
_THOUSANDS_SEP = re.compile(r"(?<=\d),(?=\d{3}\b)")
_ORDINAL_NUM = re.compile(r"(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
_INTEGER = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^\w']+|_")
_EDGE_APOSTROPHES = re.compile(r"(?<!\w)'+|'+(?!\w)")


def normalize_text(text: str) -> str:
    """Normalise text for WER: lower-case, digits to words, punctuation removed, spaces collapsed.

    Apostrophes inside words are kept ("don't"); "12" -> "twelve", "105" -> "one hundred five",
    "3rd" -> "third", "1,000" -> "one thousand", "2.5" -> "two point five", "50%" -> "fifty percent";
    "&", "+", "=" become "and", "plus", "equals". Hyphens split words ("twenty-one" -> "twenty one").
    Common British spellings become American ("colour" -> "color"), as the judge's dictionary writes them.
    """
    s = text.lower().translate(_APOSTROPHES)
    for sym, word in _SYMBOLS.items():
        s = s.replace(sym, word)
    s = _THOUSANDS_SEP.sub("", s)
    s = _ORDINAL_NUM.sub(lambda m: f" {number_to_words(int(m.group(1)), ordinal=True)} ", s)
    s = _DECIMAL.sub(
        lambda m: f" {number_to_words(int(m.group(1)))} point {' '.join(digit_word(int(d)) for d in m.group(2))} ",
        s,
    )
    s = _INTEGER.sub(lambda m: f" {number_to_words(int(m.group(0)))} ", s)
    s = _NON_WORD.sub(" ", s)
    s = _EDGE_APOSTROPHES.sub(" ", s)
    return " ".join(_BRITISH_TO_AMERICAN.get(w, w) for w in s.split())


# ---------------------------------------------------------------------------------------------
# Word error rate


def wer(ref: str | Sequence[str], hyp: str | Sequence[str]) -> float:
    """Word error rate of ``hyp`` against ``ref`` after :func:`normalize_text` on both.

    With lists, the rate is corpus-level: total (substitutions + deletions + insertions) over total
    reference words. Empty references: a pair whose reference is empty contributes its hypothesis
    words as insertions; if the whole reference side has no words, the result is 0.0 when the
    hypothesis side is empty too and 1.0 otherwise (rather than a division by zero).
    """
    if isinstance(ref, str) != isinstance(hyp, str):
        raise TypeError("ref and hyp must both be strings or both be sequences of strings")
    refs = [ref] if isinstance(ref, str) else list(ref)
    hyps = [hyp] if isinstance(hyp, str) else list(hyp)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("wer() needs at least one reference/hypothesis pair")
    refs = [normalize_text(r) for r in refs]
    hyps = [normalize_text(h) for h in hyps]
    out = jiwer.process_words(refs, hyps)
    errors = out.substitutions + out.deletions + out.insertions
    n_ref = out.hits + out.substitutions + out.deletions
    if n_ref == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / n_ref
