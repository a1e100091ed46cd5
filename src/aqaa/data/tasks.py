"""Task families of the spoken-QA corpus: what is asked, what is answered, and how it should sound.

Each family makes one conversation (usually one turn) from a seeded `random.Random`. Query phrasings are
templates with paraphrases; the last quarter of each template list is held out (only the test split uses them),
so the test split measures whether a model learnt the meaning rather than the sentence.
Numbers are always written as words, exactly as the assistant voice speaks them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from aqaa.text import number_to_words as words

DIMENSIONS = (
    "singing",
    "creativity",
    "role_playing",
    "logical_reasoning",
    "voice_understanding",
    "voice_instruction_following",
    "gaming",
    "speech_emotion_control",
    "language_ability",
)


@dataclass(frozen=True)
class Turn:
    """One question and its answer."""

    query: str
    answer: str
    dimension: str
    template: str  # "family/name/index": which phrasing asked the question
    answer_style: str = "neutral"
    query_style: str | None = None  # forced style of the asker's voice (voice understanding)
    query_gender: str | None = None  # forced gender of the asker's voice (voice understanding)
    notes: tuple[str, ...] = ()  # singing: one note name per answer syllable, e.g. ("C3", "D3")
    asked: str = ""  # the question as reported speech, for "what did I just ask?"


@dataclass(frozen=True)
class Family:
    name: str
    dimension: str  # the StepEval-Audio-360 dimension it mainly exercises
    make: Callable[[random.Random, bool], list[Turn]] = field(repr=False)


def _template(rng: random.Random, key: str, templates: list[str], heldout: bool) -> tuple[str, str]:
    """Pick a phrasing: from the last quarter when `heldout`, else from the rest. Returns (text, id)."""
    n_held = max(1, len(templates) // 4)
    lo, hi = (len(templates) - n_held, len(templates)) if heldout else (0, len(templates) - n_held)
    index = rng.randrange(lo, hi)
    return templates[index], f"{key}/{index}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _asked(question: str) -> str:
    return question.rstrip("?.! ").lower()


# ---------------------------------------------------------------------------------------------------------
# logical reasoning

ARITHMETIC = {
    "plus": ["What is {a} plus {b}?", "How much is {a} plus {b}?", "Can you tell me what {a} plus {b} is?",
             "Please add {a} and {b}.", "If I have {a} and get {b} more, how many is that?",
             "Add {a} and {b} for me.", "What do you get when you add {a} and {b}?",
             "What's the sum of {a} and {b}?"],
    "minus": ["What is {a} minus {b}?", "How much is {a} minus {b}?", "Take {b} away from {a}.",
              "Subtract {b} from {a}.", "If I have {a} and give away {b}, how many are left?",
              "What do you get when you take {b} from {a}?", "What's {a} take away {b}?"],
    "times": ["What is {a} times {b}?", "How much is {a} times {b}?", "Multiply {a} by {b}.",
              "What do you get when you multiply {a} by {b}?", "What's {a} multiplied by {b}?",
              "Please work out {a} times {b}."],
}
MAX_ADDEND = 20
MAX_FACTOR = 12


def arithmetic_fact(rng: random.Random) -> tuple[str, int, int, int]:
    op = rng.choice(list(ARITHMETIC))
    if op == "plus":
        a, b = rng.randint(0, MAX_ADDEND), rng.randint(0, MAX_ADDEND)
        return op, a, b, a + b
    if op == "minus":
        a = rng.randint(0, MAX_ADDEND)
        b = rng.randint(0, a)
        return op, a, b, a - b
    a, b = rng.randint(0, MAX_FACTOR), rng.randint(0, MAX_FACTOR)
    return op, a, b, a * b


def make_arithmetic(rng: random.Random, heldout: bool) -> list[Turn]:
    op, a, b, c = arithmetic_fact(rng)
    text, tid = _template(rng, f"arithmetic/{op}", ARITHMETIC[op], heldout)
    query = text.format(a=words(a), b=words(b))
    answer = f"{_cap(words(a))} {op} {words(b)} is {words(c)}."
    return [Turn(query, answer, "logical_reasoning", tid, asked=f"what is {words(a)} {op} {words(b)}")]


COMPARE = ["Which is bigger, {a} or {b}?", "Which number is larger, {a} or {b}?", "Is {a} more than {b}?",
           "Tell me which is greater: {a} or {b}.", "Out of {a} and {b}, which is more?",
           "Which is smaller, {a} or {b}?", "Which number is less, {a} or {b}?"]


def make_comparison(rng: random.Random, heldout: bool) -> list[Turn]:
    a, b = rng.sample(range(0, 100), 2)
    text, tid = _template(rng, "comparison", COMPARE, heldout)
    query = text.format(a=words(a), b=words(b))
    asks_smaller = "smaller" in text or "less" in text
    big, small = max(a, b), min(a, b)
    if text.startswith("Is {a} more"):
        answer = f"Yes, {words(a)} is more than {words(b)}." if a > b else f"No, {words(a)} is less than {words(b)}."
    elif asks_smaller:
        answer = f"{_cap(words(small))} is smaller than {words(big)}."
    else:
        answer = f"{_cap(words(big))} is bigger than {words(small)}."
    return [Turn(query, answer, "logical_reasoning", tid, asked=_asked(query))]


NEIGHBOURS = {
    "after": ["What number comes after {n}?", "What comes right after {n}?", "Which number follows {n}?",
              "What is the next number after {n}?", "Count one up from {n}."],
    "before": ["What number comes before {n}?", "What comes just before {n}?", "Which number is right before {n}?",
               "What is one less than {n}?", "Count one down from {n}."],
}


def make_number_neighbours(rng: random.Random, heldout: bool) -> list[Turn]:
    side = rng.choice(["after", "before"])
    n = rng.randint(1, 99)
    text, tid = _template(rng, f"neighbours/{side}", NEIGHBOURS[side], heldout)
    other = n + 1 if side == "after" else n - 1
    answer = f"The number {side} {words(n)} is {words(other)}."
    return [Turn(text.format(n=words(n)), answer, "logical_reasoning", tid, asked=_asked(text.format(n=words(n))))]


# ---------------------------------------------------------------------------------------------------------
# language ability and knowledge

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
CALENDAR = {
    "after": ["What {unit} comes after {x}?", "Which {unit} is after {x}?", "What is the {unit} after {x}?",
              "Tell me the {unit} that follows {x}.", "If it is {x}, what {unit} is next?"],
    "before": ["What {unit} comes before {x}?", "Which {unit} is before {x}?", "What is the {unit} before {x}?",
               "Tell me the {unit} just before {x}.", "If it is {x}, what {unit} was it before?"],
    "count": ["How many {unit}s are there in a {whole}?", "How many {unit}s does a {whole} have?",
              "Tell me how many {unit}s make a {whole}.", "Count the {unit}s in a {whole}."],
}


def _calendar(rng: random.Random, heldout: bool, unit: str, items: list[str], whole: str) -> list[Turn]:
    kind = rng.choice(["after", "before", "before", "after", "count"])
    text, tid = _template(rng, f"calendar/{unit}/{kind}", CALENDAR[kind], heldout)
    if kind == "count":
        query = text.format(unit=unit, whole=whole)
        answer = f"Every {whole} has {words(len(items))} {unit}s."
    else:
        i = rng.randrange(len(items))
        j = (i + 1) % len(items) if kind == "after" else (i - 1) % len(items)
        query = text.format(unit=unit, x=items[i])
        answer = f"The {unit} {kind} {items[i]} is {items[j]}."
    return [Turn(query, answer, "language_ability", tid, asked=_asked(query))]


def make_weekdays(rng: random.Random, heldout: bool) -> list[Turn]:
    return _calendar(rng, heldout, "day", DAYS, "week")


def make_months(rng: random.Random, heldout: bool) -> list[Turn]:
    return _calendar(rng, heldout, "month", MONTHS, "year")


CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi", "Russia": "Moscow", "Canada": "Ottawa",
    "Mexico": "Mexico City", "Brazil": "Brasilia", "Argentina": "Buenos Aires", "Egypt": "Cairo",
    "Kenya": "Nairobi", "Greece": "Athens", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Denmark": "Copenhagen", "Poland": "Warsaw", "Austria": "Vienna", "Ireland": "Dublin", "England": "London",
    "Scotland": "Edinburgh", "Peru": "Lima", "Chile": "Santiago", "Cuba": "Havana", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "South Korea": "Seoul", "Australia": "Canberra", "Turkey": "Ankara", "Iran": "Tehran",
    "Hungary": "Budapest", "Belgium": "Brussels", "the Netherlands": "Amsterdam", "Switzerland": "Bern",
    "the Czech Republic": "Prague", "Nigeria": "Abuja", "Ghana": "Accra", "Colombia": "Bogota",
    "Venezuela": "Caracas", "Ukraine": "Kyiv", "Cambodia": "Phnom Penh",
}
CAPITAL_TEMPLATES = ["What is the capital of {c}?", "What's the capital city of {c}?",
                     "Which city is the capital of {c}?", "Tell me the capital of {c}.",
                     "Do you know the capital of {c}?", "Name the capital of {c}.",
                     "Capital of {c}, please?", "What city is {c}'s capital?"]


def make_capitals(rng: random.Random, heldout: bool) -> list[Turn]:
    country = rng.choice(sorted(CAPITALS))
    text, tid = _template(rng, "capitals", CAPITAL_TEMPLATES, heldout)
    query = text.format(c=country)
    answer = f"The capital of {country} is {CAPITALS[country]}."
    return [Turn(query, answer, "language_ability", tid, asked=_asked(query))]


OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"),
             ("light", "dark"), ("old", "young"), ("open", "closed"), ("left", "right"), ("day", "night"),
             ("tall", "short"), ("full", "empty"), ("early", "late"), ("hard", "soft"), ("wet", "dry"),
             ("loud", "quiet"), ("rich", "poor"), ("strong", "weak"), ("clean", "dirty"), ("first", "last"),
             ("black", "white"), ("in", "out"), ("yes", "no"), ("good", "bad"), ("high", "low"), ("near", "far"),
             ("thick", "thin"), ("push", "pull"), ("win", "lose"), ("buy", "sell")]
OPPOSITE_TEMPLATES = ["What is the opposite of {w}?", "What's the opposite of {w}?",
                      "Tell me the opposite of {w}.", "Give me a word that means the opposite of {w}.",
                      "What word is the opposite of {w}?", "Which word means the reverse of {w}?"]


def make_opposites(rng: random.Random, heldout: bool) -> list[Turn]:
    pair = rng.choice(OPPOSITES)
    word, opposite = pair if rng.random() < 0.5 else pair[::-1]
    text, tid = _template(rng, "opposites", OPPOSITE_TEMPLATES, heldout)
    query = text.format(w=word)
    return [Turn(query, f"The opposite of {word} is {opposite}.", "language_ability", tid, asked=_asked(query))]


COLOURS = {"a banana": "yellow", "grass": "green", "the sky": "blue", "snow": "white", "coal": "black",
           "a tomato": "red", "a strawberry": "red", "milk": "white", "chocolate": "brown", "a carrot": "orange",
           "a lemon": "yellow", "a frog": "green", "an elephant": "grey", "a crow": "black", "a cloud": "white",
           "a pumpkin": "orange", "a leaf": "green", "the sea": "blue", "a plum": "purple", "a flamingo": "pink",
           "soil": "brown", "a cherry": "red", "the sun": "yellow", "an orange": "orange"}
COLOUR_TEMPLATES = ["What colour is {x}?", "What color is {x}?", "Tell me the colour of {x}.",
                    "Which colour is {x}?", "What colour do you think {x} is?", "Name the colour of {x}."]


def make_colours(rng: random.Random, heldout: bool) -> list[Turn]:
    thing = rng.choice(sorted(COLOURS))
    text, tid = _template(rng, "colours", COLOUR_TEMPLATES, heldout)
    query = text.format(x=thing)
    # American spelling in answers: it is what the ASR judge writes
    answer = f"The color of {thing} is {COLOURS[thing]}."
    return [Turn(query, answer, "language_ability", tid, asked=_asked(query))]


SPELL_WORDS = ["cat", "dog", "sun", "hat", "cup", "bed", "pen", "box", "fox", "map", "bus", "car", "egg", "leg",
               "fish", "bird", "tree", "book", "milk", "star", "frog", "cake", "ship", "rain", "moon", "door",
               "lamp", "sock", "duck", "red", "blue", "green", "hand", "king", "ball", "bell", "nest"]
SPELL_TEMPLATES = ["How do you spell {w}?", "Can you spell {w} for me?", "Spell the word {w}.",
                   "Spell {w}, letter by letter.", "What are the letters in {w}?", "How is {w} spelled?"]


def make_spelling(rng: random.Random, heldout: bool) -> list[Turn]:
    word = rng.choice(SPELL_WORDS)
    text, tid = _template(rng, "spelling", SPELL_TEMPLATES, heldout)
    letters = ", ".join(word.upper())
    query = text.format(w=word)
    return [Turn(query, f"{_cap(word)} is spelled {letters}.", "language_ability", tid, asked=_asked(query))]


KNOWLEDGE_MAKERS = [make_weekdays, make_months, make_capitals, make_opposites, make_colours, make_spelling]
REASONING_MAKERS = [make_arithmetic, make_comparison, make_number_neighbours]


def core_question(rng: random.Random, heldout: bool) -> Turn:
    """A plain factual or arithmetic question: the content that style, emotion and persona tasks wrap."""
    maker = rng.choice(KNOWLEDGE_MAKERS[:-1] + REASONING_MAKERS)  # spelling aloud does not wrap well
    return maker(rng, heldout)[0]


# ---------------------------------------------------------------------------------------------------------
# voice instruction following and emotion

STYLE_PHRASES = {"slow": "slowly", "fast": "quickly", "loud": "loudly", "quiet": "quietly",
                 "high": "in a high voice", "low": "in a low voice"}
STYLE_TEMPLATES = ["{q} Please say it {s}.", "Answer {s}: {q}", "{q} Say the answer {s}.",
                   "Speak {s} and tell me. {q}", "I'd like you to answer {s}. {q}", "{q} Reply {s}, please."]
EMOTION_PHRASES = {"happy": "happy", "sad": "sad", "angry": "angry", "calm": "calm"}
EMOTION_TEMPLATES = ["{q} Answer in a {e} voice.", "Sound {e} and tell me. {q}", "{q} Say it like you are {e}.",
                     "Please answer with a {e} tone. {q}", "In a {e} voice, please: {q}",
                     "{q} Use a {e} voice."]


def _wrapped(question: str, template: str, **kw: str) -> str:
    return template.format(q=question, **kw)


def make_voice_instruction(rng: random.Random, heldout: bool) -> list[Turn]:
    core = core_question(rng, heldout)
    style = rng.choice(sorted(STYLE_PHRASES))
    text, tid = _template(rng, "style", STYLE_TEMPLATES, heldout)
    query = _wrapped(core.query, text, s=STYLE_PHRASES[style])
    return [Turn(query, core.answer, "voice_instruction_following", tid, answer_style=style, asked=core.asked)]


def make_emotion(rng: random.Random, heldout: bool) -> list[Turn]:
    core = core_question(rng, heldout)
    emotion = rng.choice(sorted(EMOTION_PHRASES))
    text, tid = _template(rng, "emotion", EMOTION_TEMPLATES, heldout)
    query = _wrapped(core.query, text, e=EMOTION_PHRASES[emotion])
    return [Turn(query, core.answer, "speech_emotion_control", tid, answer_style=emotion, asked=core.asked)]


# ---------------------------------------------------------------------------------------------------------
# voice understanding: the answer is about how the asker sounds

VOICE_QUESTIONS = {
    "rate": (["Am I speaking fast or slow?", "Do I talk quickly or slowly?", "Is my speech fast or slow?",
              "How fast am I talking?", "Would you say I speak quickly or slowly?"],
             {"fast": "You are speaking quickly.", "slow": "You are speaking slowly."}),
    "pitch": (["Is my voice high or low?", "Do I have a high voice or a low voice?", "Is my pitch high or low?",
               "How high is my voice?", "Would you call my voice high or low?"],
              {"high": "Your voice is high.", "low": "Your voice is low."}),
    "loudness": (["Am I speaking loudly or quietly?", "Is my voice loud or quiet?", "Am I too loud or too quiet?",
                  "How loud am I talking?", "Would you say I am loud or quiet?"],
                 {"loud": "You are speaking loudly.", "quiet": "You are speaking quietly."}),
    "gender": (["Do I sound like a man or a woman?", "Is this a man's voice or a woman's voice?",
                "Am I a man or a woman?", "Does my voice sound male or female?",
                "Would you guess I am a man or a woman?"],
               {"male": "You sound like a man.", "female": "You sound like a woman."}),
}


def make_voice_understanding(rng: random.Random, heldout: bool) -> list[Turn]:
    prop = rng.choice(sorted(VOICE_QUESTIONS))
    templates, answers = VOICE_QUESTIONS[prop]
    value = rng.choice(sorted(answers))
    text, tid = _template(rng, f"voice/{prop}", templates, heldout)
    if prop == "gender":
        return [Turn(text, answers[value], "voice_understanding", tid, query_gender=value, asked=_asked(text))]
    return [Turn(text, answers[value], "voice_understanding", tid, query_style=value, asked=_asked(text))]


# ---------------------------------------------------------------------------------------------------------
# creativity: a short sentence with a given word

CREATIVE_WORDS = ["river", "garden", "window", "apple", "train", "moon", "dog", "music", "winter", "bread",
                  "ocean", "candle", "forest", "bicycle", "school", "rain", "kitchen", "mountain", "letter", "horse",
                  "clock", "bridge", "flower", "castle", "coffee", "island", "pencil", "rabbit", "cloud", "song"]
CREATIVE_FRAMES = ["The {adj} {w} was {place}.", "I saw a {adj} {w} {place}.", "My friend loves the {adj} {w}.",
                   "We found a {adj} {w} {place}.", "Every morning the {w} looks {adj2}.",
                   "There is a {adj} {w} {place}.", "She drew a {adj} {w} for her brother."]
CREATIVE_ADJ = ["little", "old", "quiet", "bright", "lovely", "tiny", "big", "shiny", "happy", "green"]
CREATIVE_ADJ2 = ["calm", "bright", "different", "beautiful", "sleepy", "busy", "cold", "warm"]
CREATIVE_PLACES = ["near the house", "in the park", "behind the school", "by the sea", "in the city",
                   "at the end of the road", "on the hill", "next to the station"]
CREATIVE_TEMPLATES = ["Make a short sentence with the word {w}.", "Use the word {w} in a sentence.",
                      "Can you say a sentence with {w} in it?", "Give me a sentence that uses the word {w}.",
                      "Make up a sentence about a {w}.", "Say something short using the word {w}.",
                      "Create a sentence with the word {w}.", "Please put the word {w} in a sentence."]


def make_creativity(rng: random.Random, heldout: bool) -> list[Turn]:
    word = rng.choice(CREATIVE_WORDS)
    text, tid = _template(rng, "creativity", CREATIVE_TEMPLATES, heldout)
    frame = rng.choice(CREATIVE_FRAMES)
    answer = frame.format(w=word, adj=rng.choice(CREATIVE_ADJ), adj2=rng.choice(CREATIVE_ADJ2),
                          place=rng.choice(CREATIVE_PLACES))
    query = text.format(w=word)
    return [Turn(query, answer, "creativity", tid, asked=_asked(query))]


# ---------------------------------------------------------------------------------------------------------
# role playing: a fixed persona wording and voice

PERSONAS = {
    "robot": ("Beep boop. {a} Beep.", "robot"),
    "pirate": ("Ahoy matey! {a} Yo ho ho!", "pirate"),
    "teacher": ("Good question, class. {a} Well done.", "teacher"),
}
PERSONA_TEMPLATES = ["Pretend you are a {p}. {q}", "Answer like a {p} would. {q}", "You are a {p} now. {q}",
                     "Talk like a {p}, please. {q}", "Play the part of a {p} and tell me. {q}",
                     "As a {p}, answer this: {q}"]


def make_role_play(rng: random.Random, heldout: bool) -> list[Turn]:
    core = core_question(rng, heldout)
    persona = rng.choice(sorted(PERSONAS))
    wording, style = PERSONAS[persona]
    text, tid = _template(rng, "persona", PERSONA_TEMPLATES, heldout)
    query = text.format(p=persona, q=core.query)
    return [Turn(query, wording.format(a=core.answer), "role_playing", tid, answer_style=style, asked=core.asked)]


# ---------------------------------------------------------------------------------------------------------
# gaming: rock paper scissors and riddles

RPS_BEATS = {"rock": "scissors", "paper": "rock", "scissors": "paper"}
RPS_VERB = {"rock": "breaks", "paper": "covers", "scissors": "cut"}
RPS_TEMPLATES = ["I play {h} and you play {m}. Who wins?", "Rock paper scissors: I chose {h}, you chose {m}. Who won?",
                 "If I pick {h} and you pick {m}, who wins?", "My {h} against your {m}. Who is the winner?",
                 "We played rock paper scissors. I had {h} and you had {m}. Who won?"]
RIDDLES = {
    "What has hands but cannot clap?": "a clock",
    "What has keys but cannot open locks?": "a piano",
    "What gets wetter the more it dries?": "a towel",
    "What has a neck but no head?": "a bottle",
    "What has one eye but cannot see?": "a needle",
    "What goes up but never comes down?": "your age",
    "What has many teeth but cannot bite?": "a comb",
    "What can you catch but not throw?": "a cold",
    "What has legs but cannot walk?": "a table",
    "What is full of holes but still holds water?": "a sponge",
}
RIDDLE_TEMPLATES = ["Here is a riddle. {r}", "Can you solve this riddle? {r}", "Riddle time! {r}",
                    "I have a riddle for you. {r}", "Try this riddle. {r}"]


def make_gaming(rng: random.Random, heldout: bool) -> list[Turn]:
    if rng.random() < 0.6:
        human, machine = rng.choice(sorted(RPS_BEATS)), rng.choice(sorted(RPS_BEATS))
        text, tid = _template(rng, "gaming/rps", RPS_TEMPLATES, heldout)
        query = text.format(h=human, m=machine)
        if human == machine:
            answer = f"We both played {human}, so it is a tie."
        elif RPS_BEATS[human] == machine:
            answer = f"{_cap(human)} {RPS_VERB[human]} {machine}, so you win."
        else:
            answer = f"{_cap(machine)} {RPS_VERB[machine]} {human}, so I win."
        return [Turn(query, answer, "gaming", tid, asked=_asked(query))]
    riddle = rng.choice(sorted(RIDDLES))
    text, tid = _template(rng, "gaming/riddle", RIDDLE_TEMPLATES, heldout)
    query = text.format(r=riddle)
    return [Turn(query, f"The answer is {RIDDLES[riddle]}.", "gaming", tid, asked=_asked(riddle))]


# ---------------------------------------------------------------------------------------------------------
# singing: pitched syllables

SCALE = ["C3", "D3", "E3", "F3", "G3", "A3", "B3", "C4"]
SOLFEGE = ["do", "re", "mi", "fa", "sol", "la", "ti", "do"]
NOTE_LETTERS = ["C", "D", "E", "F", "G", "A", "B"]
SCALE_TEMPLATES = {
    "up": ["Sing a scale.", "Please sing a scale going up.", "Can you sing do re mi?", "Sing the notes of a scale.",
           "Sing me a rising scale."],
    "down": ["Sing a scale going down.", "Sing a falling scale.", "Can you sing a scale from the top down?",
             "Sing the scale backwards.", "Please sing down the scale."],
    "notes": ["Sing the notes {n}.", "Please sing {n}.", "Can you sing the notes {n}?", "Sing these notes: {n}.",
              "I'd like to hear the notes {n}."],
}


def make_singing(rng: random.Random, heldout: bool) -> list[Turn]:
    kind = rng.choice(sorted(SCALE_TEMPLATES))
    text, tid = _template(rng, f"singing/{kind}", SCALE_TEMPLATES[kind], heldout)
    if kind == "notes":
        idx = [rng.randrange(7) for _ in range(rng.randint(3, 5))]
        notes = tuple(SCALE[i] for i in idx)
        syllables = [SOLFEGE[i] for i in idx]
        query = text.format(n=", ".join(NOTE_LETTERS[i] for i in idx))
    else:
        order = list(range(8)) if kind == "up" else list(range(7, -1, -1))
        notes = tuple(SCALE[i] for i in order)
        syllables = [SOLFEGE[i] for i in order]
        query = text
    answer = _cap(" ".join(syllables)) + "."
    return [Turn(query, answer, "singing", tid, answer_style="sing", notes=notes, asked=_asked(query))]


# ---------------------------------------------------------------------------------------------------------
# repeat after me: open vocabulary, and the richest source of varied assistant speech

SUBJECTS = ["the old man", "my sister", "a small dog", "the teacher", "our neighbour", "the little girl",
            "my father", "a tall woman", "the farmer", "his brother", "the young doctor", "a friendly cat",
            "the driver", "my best friend", "the baker", "a quiet boy", "the children", "her mother"]
VERBS = ["found", "painted", "carried", "opened", "cleaned", "bought", "lost", "watched", "fixed", "sold",
         "pushed", "brought", "hid", "washed", "picked up", "looked at", "drew", "closed"]
OBJECTS = ["the red door", "a heavy box", "an old map", "the blue car", "a wooden chair", "the green bottle",
           "a warm coat", "the broken window", "a paper bag", "the silver key", "a yellow kite", "the big table",
           "a long letter", "the new bicycle", "a basket of apples", "the kitchen floor", "a white shirt"]
ADVERBIALS = ["in the morning", "near the river", "after lunch", "at the market", "before dinner", "last night",
              "on a rainy day", "in the garden", "by the window", "at the station", "every Sunday", "very slowly",
              "with great care", "behind the house", "after school", "in the evening"]
REPEAT_TEMPLATES = ["Repeat after me: {s}", "Say this back to me: {s}", "Can you repeat this sentence? {s}",
                    "Please say: {s}", "Say exactly what I say. {s}", "Repeat this: {s}", "Echo this sentence. {s}",
                    "Listen and repeat. {s}"]


def random_sentence(rng: random.Random) -> str:
    """An ordinary English sentence from a small grammar (about 175,000 combinations)."""
    sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    if rng.random() < 0.7:
        sentence += " " + rng.choice(ADVERBIALS)
    return _cap(sentence) + "."


def make_repeat(rng: random.Random, heldout: bool) -> list[Turn]:
    sentence = random_sentence(rng)
    text, tid = _template(rng, "repeat", REPEAT_TEMPLATES, heldout)
    query = text.format(s=sentence)
    return [Turn(query, sentence, "language_ability", tid, asked=_asked(query))]


# ---------------------------------------------------------------------------------------------------------
# multi-turn follow-ups

AGAIN_TEMPLATES = ["Say that again.", "Can you repeat that?", "Please say it one more time.", "Sorry, what was that?",
                   "Could you say that again, please?"]
WHAT_ASKED_TEMPLATES = ["What did I just ask?", "What was my question?", "Can you tell me what I asked you?",
                        "Remind me what I asked.", "What did I ask you a moment ago?"]
PLUS_MORE_TEMPLATES = ["And plus {n}?", "Now add {n}.", "What if you add {n} more?", "And {n} more than that?",
                       "Add {n} to that."]


def make_multi_turn(rng: random.Random, heldout: bool) -> list[Turn]:
    arithmetic = rng.random() < 0.5
    first = make_arithmetic(rng, heldout)[0] if arithmetic else core_question(rng, heldout)
    turns = [first]
    for _ in range(rng.randint(1, 2)):
        prev = turns[-1]
        options = ["again", "asked"] + (["plus"] if arithmetic and prev.dimension == "logical_reasoning" else [])
        kind = rng.choice(options)
        if kind == "again":
            text, tid = _template(rng, "followup/again", AGAIN_TEMPLATES, heldout)
            turns.append(Turn(text, prev.answer, "language_ability", tid, asked=prev.asked))
        elif kind == "asked":
            text, tid = _template(rng, "followup/asked", WHAT_ASKED_TEMPLATES, heldout)
            turns.append(Turn(text, f"You asked {prev.asked}.", "language_ability", tid, asked=prev.asked))
        else:
            total = _total_of(prev.answer)
            n = rng.randint(1, 9)
            text, tid = _template(rng, "followup/plus", PLUS_MORE_TEMPLATES, heldout)
            answer = f"{_cap(words(total))} plus {words(n)} is {words(total + n)}."
            turns.append(Turn(text.format(n=words(n)), answer, "logical_reasoning", tid,
                              asked=f"what is {words(total)} plus {words(n)}"))
    return turns


def _total_of(answer: str) -> int:
    """The number an arithmetic answer ends with ("... is twelve." -> 12)."""
    spoken = answer.rstrip(".").split(" is ", 1)[1]
    for n in range(0, 1000):
        if words(n) == spoken:
            return n
    raise ValueError(f"no number at the end of {answer!r}")


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family("arithmetic", "logical_reasoning", make_arithmetic),
        Family("comparison", "logical_reasoning", make_comparison),
        Family("number_neighbours", "logical_reasoning", make_number_neighbours),
        Family("weekdays", "language_ability", make_weekdays),
        Family("months", "language_ability", make_months),
        Family("capitals", "language_ability", make_capitals),
        Family("opposites", "language_ability", make_opposites),
        Family("colours", "language_ability", make_colours),
        Family("spelling", "language_ability", make_spelling),
        Family("voice_instruction", "voice_instruction_following", make_voice_instruction),
        Family("emotion", "speech_emotion_control", make_emotion),
        Family("voice_understanding", "voice_understanding", make_voice_understanding),
        Family("creativity", "creativity", make_creativity),
        Family("role_play", "role_playing", make_role_play),
        Family("gaming", "gaming", make_gaming),
        Family("singing", "singing", make_singing),
        Family("repeat", "language_ability", make_repeat),
        Family("multi_turn", "language_ability", make_multi_turn),
    ]
}
