import pytest
import torch

from aqaa.data.align import spoken_words
from aqaa.data.config import DEFAULT_STYLES
from aqaa.vocab import CONTROL_SPECIALS, Vocabulary, train_text_tokenizer

TEXTS = [
    "What is the capital of France?", "The capital of France is Paris.", "Tell me a joke about a cat.",
    "Please say it again, but slowly.", "How many legs does a spider have?", "A spider has eight legs.",
    "Count from one to ten.", "one two three four five six seven eight nine ten",
] * 3


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary(train_text_tokenizer(TEXTS, vocab_size=320, min_frequency=1))


def test_training_is_deterministic():
    a = train_text_tokenizer(TEXTS, vocab_size=320, min_frequency=1)
    b = train_text_tokenizer(list(TEXTS), vocab_size=320, min_frequency=1)
    assert a.to_str() == b.to_str()
    assert 256 < a.get_vocab_size() <= 320


def test_id_ranges_are_contiguous_and_ordered(vocab):
    kinds = ["text", "linguistic", "semantic", "special"]
    ranges = [vocab.kind_range(k) for k in kinds]
    assert ranges[0].start == 0 and ranges[-1].stop == vocab.size == len(vocab)
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.stop == b.start
    assert [len(r) for r in ranges[1:3]] == [1024, 4096]
    for kind, r in zip(kinds, ranges, strict=True):
        assert vocab.kind(r.start) == kind and vocab.kind(r.stop - 1) == kind
    assert vocab.kind_codes(torch.tensor([r.start for r in ranges])).tolist() == [0, 1, 2, 3]
    styles = sorted(DEFAULT_STYLES)
    assert vocab.specials == list(CONTROL_SPECIALS) + [f"<|style:{s}|>" for s in styles]
    assert [vocab.special(t) for t in vocab.specials] == list(ranges[3])
    assert vocab.special("EOT") == vocab.special("<|EOT|>") == vocab.eot
    assert vocab.style("happy") == vocab.special("style:happy")
    assert vocab.audio.linguistic_offset == vocab.text_size and vocab.audio.end == vocab.special_offset


def test_errors_name_the_problem(vocab, tmp_path):
    with pytest.raises(ValueError, match="unknown special"):
        vocab.special("<|nope|>")
    with pytest.raises(ValueError, match="out of range"):
        vocab.kind(vocab.size)
    with pytest.raises(ValueError, match="out of range"):
        vocab.kind(-1)
    with pytest.raises(ValueError, match="not text ids"):
        vocab.decode_text([vocab.text_size])
    with pytest.raises(ValueError, match="missing aqaa_vocab.json"):
        Vocabulary.load(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        Vocabulary.from_pretrained_text(tmp_path / "absent")


def test_text_round_trip(vocab):
    for text in ["What is the capital of France?", "  odd   spacing\n", "café ☕ naïve", ""]:
        assert vocab.decode_text(vocab.encode_text(text)) == text
    ids = vocab.encode_text("say <|EOT|> now")  # pure text: no injected specials
    assert all(vocab.kind(i) == "text" for i in ids)


def test_save_load_and_hf_tokenizer(vocab, tmp_path):
    from transformers import AutoTokenizer

    vocab.save(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    assert len(hf) == vocab.size
    a = vocab.audio
    assert hf.convert_tokens_to_ids("<|l_5|>") == a.linguistic_offset + 5
    assert hf.convert_tokens_to_ids("<|s_7|>") == a.semantic_offset + 7
    assert hf.convert_tokens_to_ids("<|s_4095|>") == a.end - 1
    assert hf.convert_tokens_to_ids(vocab.specials) == list(range(vocab.special_offset, vocab.size))
    assert hf.convert_tokens_to_ids("<|EOT|>") == vocab.eot
    text = "Tell me a joke about a spider."
    assert hf(text, add_special_tokens=False)["input_ids"] == vocab.encode_text(text)

    loaded = Vocabulary.load(tmp_path)
    assert (loaded.size, loaded.specials, loaded.styles) == (vocab.size, vocab.specials, vocab.styles)
    assert loaded.encode_text(text) == vocab.encode_text(text)
    assert loaded.role_headers == vocab.role_headers


def test_bring_your_own_text_tokenizer(vocab, tmp_path):
    vocab.text_tokenizer.save(str(tmp_path / "tokenizer.json"))
    byo = Vocabulary.from_pretrained_text(tmp_path, linguistic_size=16, semantic_size=32, styles=["neutral"])
    assert byo.text_size == vocab.text_size
    assert byo.size == vocab.text_size + 16 + 32 + len(CONTROL_SPECIALS) + 1
    assert byo.kind(byo.text_size + 16) == "semantic"


def test_encode_words_splits_the_plain_encoding(vocab):
    text = "Well-known cats, it's true!"
    words = spoken_words(text)
    per_word = vocab.encode_words(text, words)
    assert [i for ids in per_word for i in ids] == vocab.encode_text(text)
    pieces = [vocab.decode_text(ids) for ids in per_word]  # punctuation and spaces go with the word before
    assert pieces[0] == "Well-" and pieces[1].startswith("known") and pieces[-1].strip() == "true!"
    assert all(p.strip().startswith(w) for p, w in zip(pieces, words, strict=True))


def test_chat_turn(vocab):
    body = vocab.encode_text("hello")
    turn = vocab.turn("human", body)
    assert turn[0] == vocab.bot and turn[-1] == vocab.eot
    assert vocab.decode_text(turn[1:-1]) == "human\nhello"
    with pytest.raises(ValueError, match="unknown role"):
        vocab.turn("user", body)
