import json

from aqaa.eval.cascade import load_text_answerer
from aqaa.lm.model import LM_CONFIG_FILE, LMConfig, build_model
from aqaa.lm.text import TextLM, save_text_answerer
from aqaa.vocab import Vocabulary, default_styles, train_text_tokenizer

TEXTS = ["what is seven plus five", "seven plus five is twelve", "the capital of france is paris"]


def test_text_answerer_loads_by_kind_and_answers_in_text(tmp_path):
    vocab = Vocabulary(train_text_tokenizer(TEXTS, vocab_size=300, min_frequency=1), 16, 32, default_styles())
    model = build_model(LMConfig(hidden_size=32, layers=2, heads=4, kv_heads=2, ffn=64), vocab, seed=1)
    model.save_pretrained(str(tmp_path / "lm"))
    vocab.save(tmp_path / "lm")
    (tmp_path / "lm" / LM_CONFIG_FILE).write_text(json.dumps({"layout": "text_only"}))
    save_text_answerer(tmp_path / "answerer", "../lm")
    answerer = load_text_answerer(tmp_path / "answerer")
    assert isinstance(answerer, TextLM)
    answer = answerer.answer_text(["what is seven plus five", "seven plus five is twelve"], "and plus one?")
    assert isinstance(answer, str)
    ids = answerer.generator.last_answer_ids
    assert all(vocab.kind(i) in ("text", "special") for i in ids)  # text only: the layout allows no audio
    assert answer == answerer.answer_text(["what is seven plus five", "seven plus five is twelve"], "and plus one?")
