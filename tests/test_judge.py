"""Tests for aqaa.judge: pocketsphinx transcription, order independence, text normalisation, WER."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from aqaa import judge
from aqaa.audio import load_audio
from aqaa.judge import normalize_text, transcribe, transcribe_many, wer

SR = 16000
CLEAR = "the capital of japan is tokyo"  # awb gets this right; the bound below leaves margin anyway
OTHER = "three plus four is seven"


def _pcm(wav: np.ndarray) -> bytes:
    return (np.clip(wav, -1, 1) * 32767).round().astype("<i2").tobytes()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Two flite utterances (16 kHz awb voice) and a loud, noisy, very different espeak-ng clip."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    d = tmp_path_factory.mktemp("speech")
    clips = {}
    for key, text in (("clear", CLEAR), ("other", OTHER)):
        path = d / f"{key}.wav"
        subprocess.run(["flite", "-voice", "awb", "-t", text, "-o", str(path)], check=True)
        clips[key] = path
    if shutil.which("espeak-ng") is not None:
        loud = d / "loud.wav"
        subprocess.run(["espeak-ng", "-a", "200", "-w", str(loud), "Warning! Alarm!"], check=True)
        wav, _ = sf.read(loud, dtype="float32")
    else:
        wav = np.sin(np.arange(SR) * 0.3).astype(np.float32)
    # Treat espeak's 22.05 kHz samples as 16 kHz (no resampling needed: it only has to be different),
    # add loud noise and clip, to pull the front end's noise and CMN estimates far from clean speech.
    # 0.6 s is enough, and keeps the (slow, garbage-in) decode short.
    wav = wav[: int(0.6 * SR)]
    noise = np.random.default_rng(0).normal(0, 0.3, wav.size).astype(np.float32)
    clips["weird"] = np.clip(4 * wav + noise, -1, 1)
    return clips


def test_clear_sentence_low_wer(speech):
    hyp = transcribe(speech["clear"])
    assert hyp == hyp.lower().strip() and "  " not in hyp and "<" not in hyp and "[" not in hyp
    assert wer(CLEAR, hyp) <= 0.34, hyp


def test_order_independent(speech):
    a = _pcm(load_audio(speech["clear"]))
    b = _pcm(load_audio(speech["other"]))
    weird = _pcm(speech["weird"])
    # Digital silence gives exact score ties in pocketsphinx's Gaussian top-N search, whose
    # tie-breaking depends on history unless the judge dithers, so it gets checked too.
    zeros = _pcm(np.zeros(SR, dtype=np.float32))
    judge._decoder = None  # a brand-new decoder: the references are decoded first
    a_alone = judge._decode_pcm(a)
    zeros_after_a = judge._decode_pcm(zeros)
    judge._decoder = None
    zeros_alone = judge._decode_pcm(zeros)
    seq = [judge._decode_pcm(x) for x in (weird, a, b, a)]
    # Text and search score must match exactly: no state may leak between utterances.
    assert seq[1] == a_alone  # loud noisy B first, then A
    assert seq[3] == a_alone  # A, B, A
    assert seq[2][0] != a_alone[0]  # sanity: B really is different audio
    assert zeros_after_a == zeros_alone
    assert zeros_alone[0] == ""


def test_path_and_array_agree(speech):
    raw, sr = sf.read(speech["clear"], dtype="float32")
    assert sr == SR
    # Gain does not matter (the judge peak-normalises), and a path equals its loaded array.
    from_path, from_array = transcribe_many([speech["clear"], 0.2 * raw], sample_rate=sr)
    assert from_path == from_array


def test_silence_gives_empty_transcript():
    assert transcribe(np.zeros(SR // 2, dtype=np.float32)) == ""
    assert transcribe(np.zeros(10, dtype=np.float32)) == ""  # shorter than one analysis frame


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Seven plus five is 12.", "seven plus five is twelve"),
        ("105", "one hundred five"),
        ("0", "zero"),
        ("It's 3rd, not 21st or 12th!", "it's third not twenty first or twelfth"),
        ("the 100th day", "the one hundredth day"),
        ("1,000,000 people", "one million people"),
        ("999999", "nine hundred ninety nine thousand nine hundred ninety nine"),
        ("2.5", "two point five"),
        ("50% off", "fifty percent off"),
        ("3 + 4 = 7", "three plus four equals seven"),
        ("Don\u2019t   'quote'  me...", "don't quote me"),
        ("twenty-one", "twenty one"),
        ("  Hello,\tWORLD?! ", "hello world"),
        ("", ""),
        ("Our neighbour's grey cat.", "our neighbour's gray cat"),
        ("What colour is it?", "what color is it"),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_wer_golden():
    assert wer("seven plus five is 12", "seven plus five is twelve") == 0.0
    assert wer("The sky is blue.", "the sky is blue") == 0.0
    assert wer("a b c d", "a x c") == pytest.approx(0.5)  # 1 substitution + 1 deletion
    assert wer("a b", "a b c d") == pytest.approx(1.0)  # 2 insertions
    # Corpus level: (0 + 1) errors over (2 + 2) reference words, not the mean of per-pair rates.
    assert wer(["a b", "c d"], ["a b", "c x"]) == pytest.approx(0.25)
    assert wer(["a b c d", "e"], ["a b c d", "f"]) == pytest.approx(0.2)


def test_wer_empty_reference():
    assert wer("", "") == 0.0
    assert wer("", "hello") == 1.0
    assert wer(["a b", ""], ["a b", "c"]) == pytest.approx(0.5)  # the insertion still counts
    assert wer("a b", "") == 1.0
    with pytest.raises(ValueError):
        wer(["a"], ["a", "b"])
    with pytest.raises(TypeError):
        wer("a", ["a"])
