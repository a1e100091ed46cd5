import shutil

import pytest

from aqaa.data.align import _align, align_words, spoken_words
from aqaa.data.speech import Prosody, flite_voice, synthesize

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")


def test_spoken_words_strip_punctuation_and_split_hyphens():
    assert spoken_words("Ahoy matey! Twenty-one, isn't it?") == ["Ahoy", "matey", "Twenty", "one", "isn't", "it"]


def test_alignment_assigns_inserted_and_substituted_phones():
    expected = [("dh", 0), ("ax", 0), ("k", 1), ("ae", 1), ("t", 1)]
    spoken = ["dh", "iy", "k", "ae", "ae", "t"]  # a substitution in word 0, an insertion in word 1
    assert _align(expected, spoken) == [0, 0, 1, 1, 1, 1]


@needs_flite
def test_word_times_cover_the_speech_in_order():
    text = "The capital of France is Paris."
    utt = synthesize(text, flite_voice("kal16"), Prosody(), 16000)
    duration = len(utt.wav) / 16000
    words = align_words(text, utt.phones, duration)
    assert [w.word for w in words] == ["The", "capital", "of", "France", "is", "Paris"]
    for a, b in zip(words, words[1:], strict=False):
        assert a.start < a.end <= b.start + 1e-6
    assert 0.0 < words[0].start < 0.5 and words[-1].end <= duration
    # "capital" has three syllables, "of" one: its span is clearly longer
    assert (words[1].end - words[1].start) > 1.5 * (words[2].end - words[2].start)


@needs_flite
def test_slow_speech_stretches_word_times():
    text = "Three plus four is seven."
    fast = synthesize(text, flite_voice("kal16"), Prosody(), 16000)
    slow = synthesize(text, flite_voice("kal16"), Prosody(rate=0.6), 16000)
    end_fast = align_words(text, fast.phones, len(fast.wav) / 16000)[-1].end
    end_slow = align_words(text, slow.phones, len(slow.wav) / 16000)[-1].end
    assert end_slow > 1.4 * end_fast
