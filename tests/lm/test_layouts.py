import random

import pytest
import torch

from aqaa.data.align import WordTime
from aqaa.lm import (
    LAYOUTS,
    Layout,
    LayoutState,
    Next,
    Turn,
    aligned_words,
    build_dialogue,
    build_prompt,
    encode_answer,
    get_layout,
    parse_answer,
    segment_labels,
)
from aqaa.vocab import Vocabulary, train_text_tokenizer

TEXTS = ["What is the capital of France?", "Tell me a joke about a cat.", "Count from one to ten."] * 4
PLAIN = [name for name, layout in LAYOUTS.items() if layout.kind != "aligned"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary(train_text_tokenizer(TEXTS, vocab_size=300, min_frequency=1))


def rand_text(vocab, rng, n):
    return [rng.randrange(vocab.text_size) for _ in range(n)]


def rand_audio(vocab, rng, groups):
    a = vocab.audio
    out = []
    for _ in range(groups):
        out += [a.linguistic_offset + rng.randrange(a.linguistic_size) for _ in range(2)]
        out += [a.semantic_offset + rng.randrange(a.semantic_size) for _ in range(3)]
    return out


CASES = [(0, 0), (0, 4), (7, 0), (1, 1), (3, 1), (40, 2), (3, 30), (25, 3), (20, 6), (10, 3), (26, 4)]


@pytest.mark.parametrize("name", PLAIN)
@pytest.mark.parametrize("n_text,groups", CASES)
def test_round_trip(vocab, name, n_text, groups):
    rng = random.Random(n_text * 100 + groups)
    text, audio = rand_text(vocab, rng, n_text), rand_audio(vocab, rng, groups)
    if name == "text_only":  # speaks no audio, and refuses any
        if audio:
            with pytest.raises(ValueError, match="no audio"):
                encode_answer(vocab, text, torch.tensor(audio), name)
        audio = []
    ids = encode_answer(vocab, text, torch.tensor(audio, dtype=torch.long), name)
    assert ids[-1] == vocab.eot and ids.count(vocab.text_end) == 1
    assert parse_answer(vocab, ids, name) == ([] if name == "audio_only" else text, audio)


def test_ratio_blocks(vocab):
    rng = random.Random(0)
    text, audio = rand_text(vocab, rng, 25), rand_audio(vocab, rng, 4)  # 20 audio ids: 15 + a short block of 5
    expect = text[:10] + audio[:15] + text[10:20] + audio[15:] + text[20:] + [vocab.text_end, vocab.eot]
    assert encode_answer(vocab, text, audio) == expect
    text, audio = rand_text(vocab, rng, 4), rand_audio(vocab, rng, 3)
    expect = text[:3] + audio[:5] + text[3:] + [vocab.text_end] + audio[5:] + [vocab.eot]
    assert encode_answer(vocab, text, audio, "ratio_3_5") == expect
    assert encode_answer(vocab, [], audio, "audio_only") == [vocab.text_end, *audio, vocab.eot]
    assert encode_answer(vocab, text, audio, "text_cot") == [*text, vocab.text_end, *audio, vocab.eot]


def test_layout_definitions():
    assert (LAYOUTS["ratio_6_50"].text_tokens, LAYOUTS["ratio_6_50"].audio_tokens) == (6, 50)
    assert get_layout("ratio_4_10") == Layout.ratio(4, 10)
    with pytest.raises(ValueError, match="whole number"):
        Layout.ratio(3, 4)
    with pytest.raises(ValueError, match="unknown layout"):
        get_layout("interleaved")


def test_rejects_malformed(vocab):
    rng = random.Random(1)
    t, te, eot = rand_text(vocab, rng, 3), vocab.text_end, vocab.eot
    g, t10 = rand_audio(vocab, rng, 2), rand_text(vocab, rng, 10)
    bad = {
        "cut group": ("text_cot", [*t, te, *g[:4], *g[5:], eot]),
        "semantic first": ("text_cot", [*t, te, g[2], g[0], g[1], g[3], g[4], eot]),
        "text after text_end": ("text_cot", [*t, te, t[0], *g[:5], eot]),
        "text after text_end, ratio": ("ratio_10_15", [*t, te, *g[:5], t[0], eot]),
        "EOT mid-group": ("audio_only", [te, *g[:3], eot]),
        "EOT before text_end": ("text_cot", [*t, eot]),
        "audio before the text block": ("ratio_10_15", [*g[:5], *t, te, eot]),
        "text_end after audio": ("ratio_3_5", [*t, *g[:5], te, eot]),
        "text in audio_only": ("audio_only", [*t, te, eot]),
        "audio after the audio ran out": ("ratio_10_15", [*t10, *g[:5], *t10, *g[5:], te, eot]),
        "specials in an answer": ("aligned", [*t, vocab.bot, te, eot]),
        "ids after EOT": ("text_cot", [te, eot, eot]),
    }
    with pytest.raises(ValueError, match="out of range"):
        parse_answer(vocab, [vocab.size], "text_cot")
    for why, (layout, ids) in bad.items():
        with pytest.raises(ValueError, match="may not come"):
            parse_answer(vocab, ids, layout)
            pytest.fail(why)
    assert parse_answer(vocab, [*t10, *g[:5], *t10, te, eot]) == (t10 + t10, g[:5])
    with pytest.raises(ValueError, match="incomplete"):
        parse_answer(vocab, [*t, te, *g], "text_cot")
    assert parse_answer(vocab, [*t, te, *g[:7]], "text_cot", require_end=False) == (t, g[:5])
    with pytest.raises(ValueError, match="whole number"):
        encode_answer(vocab, t, g[:4], "text_cot")


def test_mask_matches_allowed(vocab):
    state = LayoutState("ratio_10_15", vocab)
    assert state.allowed() == Next.TEXT | Next.TEXT_END
    mask = state.mask()
    assert mask.shape == (vocab.size,) and mask.dtype == torch.bool
    assert int(mask.sum()) == vocab.text_size + 1 and bool(mask[vocab.text_end])
    state.feed([vocab.text_end])
    assert int(state.mask().sum()) == vocab.audio.linguistic_size + 1
    state.advance(vocab.audio.linguistic_offset)
    assert state.allowed() == Next.LINGUISTIC and not state.allows(vocab.eot)


def _walk(vocab, layout, rng, limit=120):
    state = LayoutState(layout, vocab)
    ids = []
    while not state.done and len(ids) < limit:
        allowed = state.allowed()
        flags = [f for f in Next if f and f in allowed]
        weights = [{Next.EOT: 0.2, Next.TEXT_END: 0.06}.get(f, 1.0) for f in flags]
        mask = state.mask_of(rng.choices(flags, weights)[0])
        choices = mask.nonzero().reshape(-1)
        token = int(choices[rng.randrange(len(choices))])
        assert state.mask()[token] and state.allows(token)
        state.advance(token)
        ids.append(token)
    return ids, state.done


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_random_walks_parse(vocab, name):
    rng = random.Random(1234)
    ended = 0
    for _ in range(60):
        ids, done = _walk(vocab, name, rng)
        ended += done
        text, audio = parse_answer(vocab, ids, name, require_end=done)
        assert len(audio) % 5 == 0
        if done and name != "aligned":  # these layouts have one encoding per answer: the machine's language
            assert encode_answer(vocab, text, audio, name) == ids
    assert ended > 10


def test_aligned_by_hand(vocab):
    rng = random.Random(2)
    G = [rand_audio(vocab, rng, 1) for _ in range(4)]  # 4 groups: 0.48 s
    w = [rand_text(vocab, rng, n) for n in (2, 1, 3, 1, 2)]
    starts = [0.0, 0.30, 0.35, 0.36, 0.60]  # groups 0, 2, 2, 3 (0.36 s is exactly group 3), after the audio
    audio = [i for g in G for i in g]
    te, eot = vocab.text_end, vocab.eot
    expect = [*w[0], *G[0], *G[1], *w[1], *w[2], *G[2], *w[3], *G[3], *w[4], te, eot]
    assert encode_answer(vocab, None, audio, "aligned", words=list(zip(w, starts, strict=True))) == expect
    # the last word inside the audio: text_end right after it, the audio goes on
    words = [(w[0], WordTime("a", 0.0, 0.1)), (w[1], (0.15, 0.2))]
    assert encode_answer(vocab, w[0] + w[1], audio, "aligned", words=words) == [
        *w[0], *G[0], *w[1], te, *G[1], *G[2], *G[3], eot]
    assert parse_answer(vocab, expect, "aligned") == ([i for x in w for i in x], audio)
    assert encode_answer(vocab, None, audio, "aligned", words=[]) == [te, *audio, eot]
    with pytest.raises(ValueError, match="needs words"):
        encode_answer(vocab, w[0], audio, "aligned")


def test_aligned_words_from_word_times(vocab):
    text = "Count to ten."
    times = [WordTime("Count", 0.0, 0.3), WordTime("to", 0.3, 0.4), WordTime("ten", 0.5, 0.8)]
    words = aligned_words(vocab, text, times)
    assert [s for _, s in words] == [0.0, 0.3, 0.5]
    assert [i for ids, _ in words for i in ids] == vocab.encode_text(text)


def test_dialogue_labels(vocab):
    rng = random.Random(3)
    q_audio, a_audio = rand_audio(vocab, rng, 2), rand_audio(vocab, rng, 4)
    turns = [Turn("human", audio_ids=torch.tensor(q_audio)),
             Turn("assistant", text="The capital is Paris.", audio_ids=a_audio, style="happy"),
             Turn("human", text="Count to ten."),
             Turn("assistant", text="one two", audio_ids=a_audio[:5])]
    ids, labels = build_dialogue(vocab, turns, "ratio_10_15", system="Be brief.")
    lst = ids.tolist()
    assert lst.count(vocab.bot) == 5 and lst.count(vocab.eot) == 5
    assert lst[lst.index(vocab.audio_start) + 1:lst.index(vocab.audio_end)] == q_audio

    human = labels.select(roles=["human"])
    human_ids = ids[human].tolist()
    assert human_ids == [*vocab.turn("human", [vocab.audio_start, *q_audio, vocab.audio_end]),
                         *vocab.turn("human", vocab.encode_text("Count to ten."))]
    answer_audio = labels.select(kinds=["linguistic", "semantic"], answer_only=True)
    assert ids[answer_audio].tolist() == a_audio + a_audio[:5]
    assert int(labels.select(kinds=["linguistic", "semantic"]).sum()) == len(q_audio) + 25
    # the answers: after the header (and style marker), up to and including their EOT
    first = encode_answer(vocab, vocab.encode_text("The capital is Paris."), a_audio)
    second = encode_answer(vocab, vocab.encode_text("one two"), a_audio[:5])
    assert ids[labels.answer].tolist() == first + second
    dpo = labels.select(kinds=["text", "special"], answer_only=True)  # DPO: audio out of the loss
    assert ids[dpo].tolist() == [i for i in first + second if vocab.kind(i) in ("text", "special")]
    style_at = lst.index(vocab.style("happy"))
    assert labels.role[style_at] == 2 and not labels.answer[style_at] and labels.kind[style_at] == 3
    assert labels.select(roles=["system"]).sum() == len(vocab.turn("system", vocab.encode_text("Be brief.")))

    padded = segment_labels(vocab, lst + [vocab.pad] * 3)
    assert padded.role[-3:].tolist() == [-1] * 3 and not padded.answer[-3:].any()
    with pytest.raises(ValueError, match="role header"):
        segment_labels(vocab, [vocab.bot, *vocab.encode_text("robot\n"), vocab.eot])
    with pytest.raises(ValueError, match="unclosed"):
        segment_labels(vocab, [*vocab.turn_header("human"), *vocab.turn_header("assistant")])

    prompt = build_prompt(vocab, turns[:1], system="Be brief.", style="happy")
    assert lst[:len(prompt)] == prompt and prompt[-1] == vocab.style("happy")
