import shutil

import numpy as np
import pytest

from aqaa.data.build import note_hz, sing
from aqaa.data.config import CorpusConfig
from aqaa.data.speech import Prosody, flite_voice, synthesize
from aqaa.data.tasks import SCALE
from aqaa.eval.prosody import measure, melody_error, relative, syllable_pitches

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
TEXT = "The capital of France is Paris."
SR = 16000


def _measure(prosody: Prosody):
    return measure(synthesize(TEXT, flite_voice("awb"), prosody, SR).wav, SR, words=6)


@pytest.fixture(scope="module")
def neutral():
    return _measure(Prosody())


def test_slow_speech_measures_as_slow(neutral):
    assert relative(_measure(Prosody(rate=0.65)), neutral)["rate"] < 0.8
    assert relative(_measure(Prosody(rate=1.45)), neutral)["rate"] > 1.2


def test_pitch_and_level_measure_as_asked(neutral):
    assert relative(_measure(Prosody(pitch=1.4)), neutral)["pitch"] > 1.25
    assert relative(_measure(Prosody(pitch=0.75)), neutral)["pitch"] < 0.85
    assert relative(_measure(Prosody(gain_db=-14)), neutral)["level_db"] == pytest.approx(-14, abs=1.0)
    assert relative(_measure(Prosody(expressive=0.0)), neutral)["spread"] < 0


def test_a_sung_scale_follows_its_notes():
    config = CorpusConfig()
    rising = [note_hz(n) for n in SCALE]
    wav, times = sing(["do", "re", "mi", "fa", "sol", "la", "ti", "do"], tuple(SCALE), flite_voice("awb"), config,
                      None)
    assert len(times) == 8
    sung = syllable_pitches(wav, SR)
    assert len(sung) == 8
    assert melody_error(sung, rising) < 1.0  # within a semitone on average
    assert melody_error(sung, rising[::-1]) > 4.0  # and clearly not the falling scale


def test_silence_is_refused():
    with pytest.raises(ValueError, match="silent"):
        measure(np.zeros(SR, np.float32), SR)
