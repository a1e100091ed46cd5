"""Each scorer on known inputs: real flite speech, transcribed by the real judge."""

import shutil

import numpy as np
import pytest

from aqaa import judge
from aqaa.data.build import sing
from aqaa.data.config import CorpusConfig
from aqaa.data.speech import Prosody, flite_voice, synthesize
from aqaa.data.tasks import SCALE, SOLFEGE
from aqaa.eval import styles
from aqaa.eval.keys import answer_key
from aqaa.eval.match import tokens
from aqaa.eval.score import Evidence, measure_answer, score_turn

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
SR = 16000
AWB = flite_voice("awb")


def _row(family, answer, query="", style="neutral", notes=(), turn=0):
    return {"family": family, "turn": turn, "template": f"{family}/0", "query_text": query, "answer_text": answer,
            "answer_style": style, "answer_notes": list(notes)}


def _spoken(text, prosody=None):
    wav = synthesize(text, AWB, prosody or Prosody(), SR).wav
    transcript = judge.transcribe(wav, SR)
    return Evidence(tokens(transcript), wav, SR, measure_answer(wav, SR))


@pytest.fixture(scope="module")
def calibration():
    return styles.calibrate(CorpusConfig(), sentences=6, progress=False)


@pytest.fixture(scope="module")
def neutral_baseline():
    texts = ["The capital of Portugal is Lisbon.", "Ten is smaller than forty four.",
             "The month before January is December.", "Every year has twelve months."]
    return styles.baseline([_spoken(t).style_features() for t in texts])


def test_a_right_spoken_answer_scores_high_and_a_wrong_one_low():
    key = answer_key(_row("capitals", "The capital of Portugal is Lisbon."))
    right = score_turn(key, _spoken("The capital of Portugal is Lisbon."))
    assert (right.fact, right.topic, right.chat) == (1.0, 1.0, 5.0)
    wrong = score_turn(key, _spoken("The capital of Portugal is Madrid."))
    assert wrong.fact == 0.0 and wrong.topic == 1.0 and wrong.chat == 3.0  # on topic, wrong
    off_topic = score_turn(key, _spoken("Twenty is smaller than fifty two."))
    assert off_topic.fact == 0.0 and off_topic.topic == 0.0 and off_topic.chat == 1.0
    arithmetic = answer_key(_row("arithmetic", "Six plus fifteen is twenty one."))
    assert score_turn(arithmetic, _spoken("Six plus fifteen is twenty one.")).fact == 1.0
    assert score_turn(arithmetic, _spoken("Six plus fifteen is nineteen.")).fact == 0.0


def test_slow_speech_scores_as_slow_and_fast_as_fast(calibration, neutral_baseline):
    key = answer_key(_row("voice_instruction", "Ten minus five is five.", style="slow"))
    config = CorpusConfig()
    for style, expected in (("slow", 1.0), ("fast", 0.0), ("neutral", 0.0)):
        ev = _spoken("Ten minus five is five.", config.styles[style])
        ev.neutral, ev.calibration = neutral_baseline, calibration
        scored = score_turn(key, ev)
        assert scored.fact == 1.0
        assert scored.skill == expected, (style, scored.detail)
    fast = answer_key(_row("voice_instruction", "Ten minus five is five.", style="fast"))
    ev = _spoken("Ten minus five is five.", config.styles["fast"])
    ev.neutral, ev.calibration = neutral_baseline, calibration
    assert score_turn(fast, ev).skill == 1.0


def test_emotions_are_heard_from_prosody(calibration, neutral_baseline):
    config = CorpusConfig()
    text = "The number before eighty three is eighty two."
    for emotion in ("sad", "happy"):
        ev = _spoken(text, config.styles[emotion])
        ev.neutral, ev.calibration = neutral_baseline, calibration
        scored = score_turn(answer_key(_row("emotion", text, style=emotion)), ev)
        assert scored.skill == 1.0, (emotion, scored.detail)
    ev = _spoken(text)
    ev.neutral, ev.calibration = neutral_baseline, calibration
    assert score_turn(answer_key(_row("emotion", text, style="sad")), ev).skill == 0.0


def test_a_rising_scale_scores_as_a_scale_and_not_as_a_falling_one():
    notes = tuple(SCALE)
    wav, _ = sing(list(SOLFEGE), notes, AWB, CorpusConfig(), None)
    ev = Evidence([], wav, SR, measure_answer(wav, SR))
    rising = score_turn(answer_key(_row("singing", "Do re mi fa sol la ti do.", style="sing", notes=notes)), ev)
    assert rising.fact == 1.0 and rising.topic == 1.0
    assert rising.detail["melody_error_semitones"] < 1.0
    falling = answer_key(_row("singing", "Do ti la sol fa mi re do.", style="sing", notes=notes[::-1]))
    assert score_turn(falling, ev).fact == 0.0
    short = answer_key(_row("singing", "Do mi sol.", style="sing", notes=("C3", "E3", "G3")))
    assert score_turn(short, ev).topic == 0.0  # eight syllables are not the three notes asked for
    speech = _spoken("Do re mi fa sol la ti do.")
    assert score_turn(answer_key(_row("singing", "Do re mi fa sol la ti do.", style="sing", notes=notes)),
                      speech).fact == 0.0


def test_voice_understanding_names_the_right_property():
    fast = answer_key(_row("voice_understanding", "You are speaking quickly."))
    slow = answer_key(_row("voice_understanding", "You are speaking slowly."))
    said = _spoken("You are speaking quickly.")
    assert score_turn(fast, said).fact == 1.0
    assert score_turn(slow, said).fact == 0.0 and score_turn(slow, said).topic == 1.0
    loud = answer_key(_row("voice_understanding", "You are speaking loudly."))
    assert score_turn(loud, said).topic == 0.0  # about the rate, not the loudness


def test_multi_turn_answers_must_recall_the_earlier_turn():
    key = answer_key(_row("multi_turn", "You asked what is fifteen plus zero.", turn=1))
    assert score_turn(key, _spoken("You asked what is fifteen plus zero.")).fact == 1.0
    assert score_turn(key, _spoken("You asked what is the capital of France.")).fact == 0.0
    again = answer_key(_row("multi_turn", "Fifteen plus zero is fifteen.", turn=2))
    assert score_turn(again, _spoken("Fifteen plus zero is fifteen.")).fact == 1.0


def test_silence_scores_zero_everywhere():
    key = answer_key(_row("voice_instruction", "Ten minus five is five.", style="slow"))
    ev = Evidence([], np.zeros(SR, np.float32), SR, measure_answer(np.zeros(SR, np.float32), SR))
    scored = score_turn(key, ev)
    assert (scored.fact, scored.topic, scored.skill, scored.chat) == (0.0, 0.0, 0.0, 1.0)
