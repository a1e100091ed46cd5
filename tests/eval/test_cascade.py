"""The cascade's plumbing, with a test double standing in for the text-only LM (which the LM recipe provides)."""

import json
import shutil

import pytest

from aqaa import judge
from aqaa.data.speech import Prosody, flite_voice, synthesize
from aqaa.eval.cascade import (
    CascadeSystem,
    load_text_answerer,
    register_text_answerer,
    save_cascade_system,
)
from aqaa.pipeline import SpokenTurn, load_spoken_model

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
SR = 16000


class CapitalsAnswerer:
    """Knows one capital; records what it was given."""

    def __init__(self):
        self.seen = []

    def answer_text(self, history_texts, question):
        self.seen.append((list(history_texts), question))
        if "portugal" in question:
            return "The capital of Portugal is Lisbon."
        return "I do not know."


def _question(text):
    return synthesize(text, flite_voice("slt"), Prosody(), SR).wav


def test_the_cascade_hears_answers_and_speaks_with_timed_stages():
    answerer = CapitalsAnswerer()
    cascade = CascadeSystem(answerer)
    answer = cascade.respond(_question("What is the capital of Portugal?"), SR)
    (history, question), = answerer.seen
    assert history == [] and question == answer.extra["question_transcript"] and "portugal" in question
    assert answer.text == "The capital of Portugal is Lisbon."
    assert answer.sample_rate == SR and answer.audio.size > SR * 0.8
    assert "lisbon" in judge.transcribe(answer.audio, SR)
    assert set(answer.timings) == {"asr", "answer", "tts", "first_audio", "total"}
    assert answer.timings["total"] >= answer.timings["asr"] + answer.timings["tts"] > 0


def test_history_reaches_the_text_model_as_text():
    answerer = CapitalsAnswerer()
    cascade = CascadeSystem(answerer)
    first = _question("What is the capital of Portugal?")
    history = [SpokenTurn("human", audio=first, sample_rate=SR),
               SpokenTurn("assistant", text="The capital of Portugal is Lisbon.")]
    cascade.respond(_question("Say that again."), SR, history)
    (texts, _), = answerer.seen
    assert len(texts) == 2 and "portugal" in texts[0] and texts[1] == "The capital of Portugal is Lisbon."


def test_a_cascade_directory_loads_its_text_answerer(tmp_path):
    register_text_answerer("test.capitals", lambda directory, config: CapitalsAnswerer())
    answerer_dir = tmp_path / "answerer"
    answerer_dir.mkdir()
    (answerer_dir / "config.json").write_text(json.dumps({"kind": "test.capitals"}))
    system = load_spoken_model(save_cascade_system(tmp_path / "cascade", answerer_dir))
    assert isinstance(system, CascadeSystem) and system.name == "cascade"
    assert system.voice.name == "flite:awb"


def test_an_unknown_text_answerer_kind_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"kind": "aqaa.mystery_lm"}))
    with pytest.raises(ValueError, match="not a text answerer.*aqaa.text_lm"):
        load_text_answerer(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_text_answerer(tmp_path / "missing")
