import random

import numpy as np
import pytest

from aqaa.data.tasks import FAMILIES
from aqaa.eval.keys import AnswerKeyError, answer_key, content_key
from aqaa.eval.match import tokens
from aqaa.eval.score import Evidence, evaluate

AUDIO_CHECKS = {"melody", "sung", "style"}


def _turns(family: str, n: int = 40):
    """Turns of a family as benchmark rows, from both template halves."""
    rows = []
    for seed in range(n):
        for turn_index, turn in enumerate(FAMILIES[family].make(random.Random(seed), seed % 2 == 0)):
            rows.append({"family": family, "turn": turn_index, "template": turn.template, "query_text": turn.query,
                         "answer_text": turn.answer, "answer_style": turn.answer_style,
                         "answer_notes": list(turn.notes)})
    return rows


def _on_text(check, text):
    return evaluate(check, Evidence(tokens(text), np.zeros(0, np.float32), 16000), {})


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_answer_of_every_family_has_a_key_that_its_own_words_pass(family):
    for row in _turns(family):
        key = answer_key(row)
        assert set(key) == {"fact", "topic", "skill"}
        if key["fact"]["type"] not in AUDIO_CHECKS:
            assert _on_text(key["fact"], row["answer_text"]) == 1.0, row["answer_text"]
        if key["topic"]["type"] not in AUDIO_CHECKS:
            assert _on_text(key["topic"], row["answer_text"]) == 1.0, row["answer_text"]


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"singing"}))
def test_a_different_answer_of_the_same_family_mostly_fails_the_fact(family):
    rows = _turns(family, 60)
    passed = total = 0
    for row, other in zip(rows, rows[1:] + rows[:1], strict=True):
        if other["answer_text"] == row["answer_text"]:
            continue
        total += 1
        passed += _on_text(answer_key(row)["fact"], other["answer_text"])
    # some other answers are right by chance: same colour, same winner, another question with the same result
    assert total > 20 and passed / total < 0.35, (passed, total)


def test_keys_read_what_the_answer_says():
    fact, topic = content_key("Seven plus five is twelve.")
    assert fact == {"type": "number", "value": 12, "position": "last"}
    assert topic == {"type": "numbers_any", "values": [5, 7, 12]}
    fact, _ = content_key("Thirteen is smaller than forty nine.")
    assert fact["value"] == 13 and fact["position"] == "first"
    fact, _ = content_key("The capital of Mexico is Mexico City.")
    assert fact["type"] == "choice" and fact["value"] == "mexico city" and "lima" in fact["options"]
    fact, _ = content_key("Cat is spelled C, A, T.")
    assert fact == {"type": "letters", "letters": ["c", "a", "t"]}


def test_styles_emotions_and_personas_add_a_skill():
    styled = answer_key({"family": "voice_instruction", "template": "style/0", "query_text": "",
                         "answer_text": "Ten minus five is five.", "answer_style": "slow", "answer_notes": []})
    assert styled["skill"] == {"type": "style", "style": "slow", "group": "instruction"}
    sad = answer_key({"family": "emotion", "template": "emotion/0", "query_text": "",
                      "answer_text": "Ten minus five is five.", "answer_style": "sad", "answer_notes": []})
    assert sad["skill"]["group"] == "emotion"
    pirate = answer_key({"family": "role_play", "template": "persona/0", "query_text": "",
                         "answer_text": "Ahoy matey! Ten minus five is five. Yo ho ho!", "answer_style": "pirate",
                         "answer_notes": []})
    assert pirate["skill"]["type"] == "persona" and pirate["fact"]["value"] == 5


def test_an_unknown_wording_is_an_error_not_lenient_scoring():
    with pytest.raises(AnswerKeyError, match="no answer key"):
        content_key("Paris is lovely in spring.")
