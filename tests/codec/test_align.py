import shutil

import numpy as np
import pytest

from aqaa.codec.align import AlignmentError, align, viterbi
from aqaa.codec.phones import PHONE_ID, text_to_phone_ids

from .helpers import tiny_tokenizer


def test_viterbi_follows_the_posteriors():
    # 10 positions, targets [a, b]: posteriors say blank blank a a blank b b b blank blank
    a, b = 3, 7
    frames = [0, 0, a, a, 0, b, b, b, 0, 0]
    log_probs = np.full((10, 45), -10.0)
    for t, p in enumerate(frames):
        log_probs[t, p] = 0.0
    assert viterbi(log_probs, [a, b]).tolist() == [-1, -1, 0, 0, -1, 1, 1, 1, -1, -1]
    # a repeated phone needs a blank between its two emissions
    assert viterbi(np.zeros((3, 45)), [a, a]).tolist() == [0, -1, 1]
    with pytest.raises(AlignmentError, match="at least 3"):
        viterbi(np.zeros((2, 45)), [a, a])


def test_phones_of_text_use_flite_lexicon():
    ids, words = text_to_phone_ids("Hello, world!")
    assert [w for w, _, _ in words] == ["Hello", "world"]
    assert ids[:4] == [PHONE_ID[p] for p in ("hh", "ax", "l", "ow")]


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_align_gives_ordered_times_inside_the_audio():
    from aqaa.data.speech import Prosody, synthesize, voice_from_name

    tokenizer = tiny_tokenizer()
    text = "the cat sat on the mat"
    wav = synthesize(text, voice_from_name("flite:awb"), Prosody(), 16000).wav
    phones, words = align(tokenizer.linguistic, wav, text, 16000, delay_ms=0.0)
    assert len(phones) == len(text_to_phone_ids(text)[0]) and [w.word for w in words] == text.split()
    starts = [p.start for p in phones]
    assert starts == sorted(starts) and all(p.end >= p.start for p in phones)
    assert phones[-1].end <= len(wav) / 16000 + 1e-6
    with pytest.raises(AlignmentError):
        align(tokenizer.linguistic, wav[:1600], text * 3, 16000)
    with pytest.raises(ValueError, match="16000 Hz"):
        align(tokenizer.linguistic, wav, text, 8000)
