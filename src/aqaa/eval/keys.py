"""Answer keys: what a right answer to each benchmark turn must contain, derived from the task families.

A key has three checks, each a small JSON-able spec that `aqaa.eval.score` evaluates on the answer's transcript
and audio:
  fact   is the known answer there? ("seven plus five is twelve": the last number heard is 12)
  topic  is the answer about the question? (it mentions 7, 5 or 12)
  skill  the dimension's own demand, when it has one: the asked speaking style or emotion, the persona's words
Singing keeps its melody as the fact and "it is sung" as the topic.

Keys are made from the corpus's own answer wording (src/aqaa/data/tasks.py); a wording this module does not
recognise is an error, so a change to the tasks shows up here rather than as silently lenient scoring.
"""

from __future__ import annotations

import re
from typing import Any

from aqaa.data.tasks import (
    CAPITALS,
    COLOURS,
    DAYS,
    EMOTION_PHRASES,
    MONTHS,
    OPPOSITES,
    PERSONAS,
    RIDDLES,
    RPS_BEATS,
    STYLE_PHRASES,
    VOICE_QUESTIONS,
)
from aqaa.text import number_to_words

Check = dict[str, Any]

# Words that carry no content in "you asked ..." and "repeat after me" answers.
STOPWORDS = frozenset(
    "a an the is are am was were be it its of to in on at by for and or me my i you your what which how do does "
    "did can could would please tell give if that this with".split())
RECALL_FACT = 0.6  # share of the content words heard for a repeated sentence to count as right
RECALL_TOPIC = 0.3
MIN_SENTENCE_WORDS = 4

_NUMBER_WORDS = {number_to_words(n): n for n in range(0, 1000)}
# Spoken forms of each voice property value (what a right answer may say), keyed by the corpus's value names.
VOICE_WORDS = {
    "rate": {"fast": ["quickly", "fast", "quick"], "slow": ["slowly", "slow"]},
    "pitch": {"high": ["high"], "low": ["low"]},
    "loudness": {"loud": ["loudly", "loud"], "quiet": ["quietly", "quiet", "softly"]},
    "gender": {"male": ["man", "male"], "female": ["woman", "female"]},
}
PERSONA_WORDS = {"robot": ["beep", "boop"], "pirate": ["ahoy", "matey", "yo ho ho"],
                 "teacher": ["good question class", "well done"]}
RPS_OUTCOMES = {"tie": ["so it is a tie", "tie"], "you": ["you win"], "i": ["i win"]}


class AnswerKeyError(ValueError):
    """An answer wording the key maker does not know."""


def _number(text: str) -> int:
    words = text.lower().strip(" .,")
    if words not in _NUMBER_WORDS:
        raise AnswerKeyError(f"not a number in words: {text!r}")
    return _NUMBER_WORDS[words]


def _choice(value: str, options: list[str], position: str = "last") -> Check:
    return {"type": "choice", "value": value.lower(), "position": position,
            "options": {o.lower(): [o.lower()] for o in options}}


def _phrases(*phrases: str) -> Check:
    return {"type": "phrase", "phrases": [p.lower() for p in phrases]}


def _numbers_any(*values: int) -> Check:
    return {"type": "numbers_any", "values": sorted(set(values))}


def content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z']+", text.lower())
    return [w for w in words if w not in STOPWORDS]


def _recall(text: str, minimum: float) -> Check:
    return {"type": "recall", "words": content_words(text), "min": minimum}


_ALL_OPPOSITES = sorted({w for pair in OPPOSITES for w in pair})
_RIDDLE_OPTIONS = {answer.split()[-1]: [answer, answer.split()[-1]] for answer in RIDDLES.values()}


def _bare(thing: str) -> str:
    return re.sub(r"^(a|an|the) ", "", thing.lower())


def content_key(answer: str) -> tuple[Check, Check]:
    """(fact, topic) of a plain factual or arithmetic answer, recognised from its wording."""
    a = answer.strip()
    if m := re.fullmatch(r"(Yes|No), (.+) is (?:more|less) than (.+)\.", a):
        return (_choice(m[1], ["yes", "no"], "first"), _numbers_any(_number(m[2]), _number(m[3])))
    if m := re.fullmatch(r"(.+) is (?:smaller|bigger) than (.+)\.", a):
        first, second = _number(m[1]), _number(m[2])
        return {"type": "number", "value": first, "position": "first"}, _numbers_any(first, second)
    if m := re.fullmatch(r"(.+) (?:plus|minus|times) (.+) is (.+)\.", a):
        x, y, result = _number(m[1]), _number(m[2]), _number(m[3])
        return {"type": "number", "value": result, "position": "last"}, _numbers_any(x, y, result)
    if m := re.fullmatch(r"The number (?:after|before) (.+) is (.+)\.", a):
        n, other = _number(m[1]), _number(m[2])
        return {"type": "number", "value": other, "position": "last"}, _numbers_any(n, other)
    if m := re.fullmatch(r"Every (week|year) has (.+) (days|months)\.", a):
        count = _number(m[2])
        topic = {"type": "any", "checks": [_phrases(m[1], m[3]), _numbers_any(count)]}
        return {"type": "number", "value": count, "position": "last"}, topic
    if m := re.fullmatch(r"The (day|month) (?:after|before) (\w+) is (\w+)\.", a):
        return _choice(m[3], DAYS if m[1] == "day" else MONTHS), _phrases(m[2], m[3])
    if m := re.fullmatch(r"The capital of (.+) is (.+)\.", a):
        return _choice(m[2], sorted(CAPITALS.values())), _phrases(_bare(m[1]), m[2])
    if m := re.fullmatch(r"The opposite of (\w+) is (\w+)\.", a):
        return _choice(m[2], _ALL_OPPOSITES), _phrases(m[1], m[2])
    if m := re.fullmatch(r"The color of (.+) is (\w+)\.", a):
        return _choice(m[2], sorted(set(COLOURS.values()))), _phrases(_bare(m[1]), m[2])
    if m := re.fullmatch(r"(\w+) is spelled ([A-Z](?:, [A-Z])*)\.", a):
        letters = m[2].lower().split(", ")
        return {"type": "letters", "letters": letters}, _phrases(m[1], "spelled", "spell")
    raise AnswerKeyError(f"no answer key for the wording {answer!r}")


def _voice_key(answer: str) -> tuple[Check, Check]:
    for prop, (_, answers) in VOICE_QUESTIONS.items():
        for value, wording in answers.items():
            if wording == answer:
                # The whole answer sentence is an option too: its extra phones let the matcher hear "you sound
                # like a month" as "...a man" while "...a woman" stays closer to "...a woman".
                words = {v: [*VOICE_WORDS[prop][v], w.rstrip(".").lower()] for v, w in answers.items()}
                fact = {"type": "choice", "value": value, "position": "last", "options": words}
                return fact, _phrases(*[w for ws in words.values() for w in ws])
    raise AnswerKeyError(f"not a voice-understanding answer: {answer!r}")


def _gaming_key(answer: str) -> tuple[Check, Check]:
    rps_topic = _phrases(*sorted(RPS_BEATS), *[p for ps in RPS_OUTCOMES.values() for p in ps])
    options = dict(RPS_OUTCOMES)
    if re.fullmatch(r"We both played (\w+), so it is a tie\.", answer):
        return {"type": "choice", "value": "tie", "position": "last", "options": options}, rps_topic
    if m := re.fullmatch(r"\w+ (?:breaks|covers|cut) \w+, so (you|I) win\.", answer):
        return {"type": "choice", "value": m[1].lower(), "position": "last", "options": options}, rps_topic
    if m := re.fullmatch(r"The answer is (.+)\.", answer):
        value = m[1].split()[-1]
        fact = {"type": "choice", "value": value, "position": "last", "options": _RIDDLE_OPTIONS}
        return fact, {"type": "any", "checks": [_phrases("the answer is"),
                                                 {**fact, "type": "choice_any"}]}
    raise AnswerKeyError(f"not a gaming answer: {answer!r}")


def _persona(answer: str, style: str) -> tuple[str, Check]:
    """The core answer inside a persona's wording, and the persona check."""
    wording = PERSONAS[style][0]
    pattern = re.escape(wording).replace(re.escape("{a}"), "(.+)")
    m = re.fullmatch(pattern, answer)
    if not m:
        raise AnswerKeyError(f"not a {style} answer: {answer!r}")
    return m[1], {"type": "persona", "persona": style, "phrases": PERSONA_WORDS[style]}


def answer_key(turn: dict[str, Any]) -> dict[str, Any]:
    """The key of one benchmark turn (a row of the benchmark: family, template, answer text, style, notes)."""
    family, answer, style = turn["family"], turn["answer_text"], turn["answer_style"]
    skill: Check | None = None
    if family == "singing":
        fact = {"type": "melody", "notes": list(turn["answer_notes"])}
        topic = {"type": "sung", "syllables": len(turn["answer_notes"])}
    elif family == "creativity":
        word = re.search(r"the word (\w+)|with (\w+) in it|about a (\w+)", turn["query_text"])
        if word is None:
            raise AnswerKeyError(f"no asked word in {turn['query_text']!r}")
        asked = next(g for g in word.groups() if g)
        fact = {"type": "sentence", "word": asked, "min_words": MIN_SENTENCE_WORDS}
        topic = _phrases(asked)
    elif family == "repeat":
        fact, topic = _recall(answer, RECALL_FACT), _recall(answer, RECALL_TOPIC)
    elif family == "voice_understanding":
        fact, topic = _voice_key(answer)
    elif family == "gaming":
        fact, topic = _gaming_key(answer)
    elif family == "role_play":
        core, skill = _persona(answer, style)
        fact, topic = content_key(core)
        if fact["type"] == "choice":  # "well done" must not count as a mention of "sell"
            fact["ignore"] = PERSONA_WORDS[style]
    elif family == "multi_turn" and answer.startswith("You asked "):  # "what did I ask?" (or "again" after it)
        asked = answer.removeprefix("You asked ").rstrip(".")
        fact = {"type": "all", "checks": [_phrases("asked", "ask"), _recall(asked, RECALL_FACT)]}
        topic = _recall(asked, RECALL_TOPIC)
    else:  # the knowledge and reasoning families, styled or not, and multi-turn "again" and "plus"
        fact, topic = content_key(answer)
        if style in STYLE_PHRASES:
            skill = {"type": "style", "style": style, "group": "instruction"}
        elif style in EMOTION_PHRASES:
            skill = {"type": "style", "style": style, "group": "emotion"}
    return {"fact": fact, "topic": topic, "skill": skill}
