import json

import numpy as np
import pytest

from aqaa.eval.bench import GROUPS
from aqaa.eval.reference import ReferenceSystem, save_reference_system
from aqaa.eval.report import compare_runs, load_report, write_report
from aqaa.eval.run import RunError, collect_answers, score_run
from aqaa.pipeline import SpokenAnswer, load_spoken_model

from .conftest import needs_synth

pytestmark = needs_synth


class Recorder:
    """A system that answers like another one and remembers what it was asked; may fail after `fail_after`."""

    def __init__(self, inner, fail_after=None):
        self.name = inner.name
        self.inner = inner
        self.fail_after = fail_after
        self.calls = []

    def respond(self, audio, sample_rate, history=(), system=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed ^C halfway
        self.calls.append(list(history))
        return self.inner.respond(audio, sample_rate, history, system)


class Silent:
    name = "silent"

    def respond(self, audio, sample_rate, history=(), system=None):
        return SpokenAnswer(text="", audio=np.zeros(0, np.float32), sample_rate=16000)


def test_every_dimension_has_a_score_and_the_reference_scores_high(reference_run):
    out, report = reference_run
    assert set(report["dimensions"]) == set(GROUPS)
    for summary in report["dimensions"].values():
        assert summary["n"] >= 1 and 0 <= summary["score"] <= 100 and 1 <= summary["chat"] <= 5
    overall = report["overall"]
    assert overall["factuality"] >= 70 and overall["relevance"] >= 80 and overall["chat"] >= 4
    assert overall["nine_dimension_score"] is not None
    assert report["turns"] and all(t["transcript"] is not None for t in report["turns"])


def test_report_files_table_and_radar_are_written(reference_run, tiny_bench):
    out, report = reference_run
    paths = write_report(report, out)
    assert load_report(out)["bench_sha256"] == tiny_bench.sha256
    md = paths["markdown"].read_text()
    assert tiny_bench.sha256 in md and "| Singing |" in md and "**overall**" in md
    assert paths["radar"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wrong_answers_score_low_and_compare_side_by_side(reference_run, tiny_bench, tmp_path):
    out, report = reference_run
    write_report(report, out)
    system = load_spoken_model(save_reference_system(tmp_path / "wrong-system", tiny_bench.directory, "wrong"))
    collect_answers(system, tiny_bench, tmp_path / "wrong", progress=False)
    wrong = score_run(tiny_bench, tmp_path / "wrong", progress=False)
    write_report(wrong, tmp_path / "wrong")
    assert wrong["overall"]["factuality"] <= 20 < report["overall"]["factuality"]
    assert wrong["overall"]["chat"] < report["overall"]["chat"] - 1.5
    table = compare_runs([out, tmp_path / "wrong"], tmp_path / "both.png")
    assert "reference-truth" in table and "reference-wrong" in table and "Factuality" in table
    assert (tmp_path / "both.png").stat().st_size > 1000


def test_an_interrupted_run_continues_where_it_stopped_with_each_conversation_so_far(reference_run, tiny_bench,
                                                                                    tmp_path):
    out = tmp_path / "resumed"
    first = Recorder(ReferenceSystem(tiny_bench.directory), fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        collect_answers(first, tiny_bench, out, progress=False)
    assert len(list((out / "answers").glob("*.json"))) == 4
    second = Recorder(ReferenceSystem(tiny_bench.directory))
    asked = collect_answers(second, tiny_bench, out, progress=False)
    total = len(tiny_bench.turns)
    assert asked == len(second.calls) == total - 4
    assert collect_answers(second, tiny_bench, out, progress=False) == 0  # finished: nothing is asked again
    resumed = score_run(tiny_bench, out, progress=False)
    expected = {t["id"]: t["transcript"] for t in reference_run[1]["turns"]}
    assert {t["id"]: t["transcript"] for t in resumed["turns"]} == expected
    # every question came with the conversation so far, the resumed ones with the cached earlier answers
    order = [tid for c in tiny_bench.conversations() for tid in c["turns"]]
    for turn_id, history in zip(order, first.calls + second.calls, strict=True):
        turn = tiny_bench.turns[turn_id]
        assert len(history) == 2 * turn["turn"]
        assert [h.role for h in history] == ["human", "assistant"] * turn["turn"]
        for h in history[1::2]:
            assert h.text and h.audio is not None  # the system's own earlier answer
    assert any(tiny_bench.turns[t]["turn"] > 0 for t in order)


def test_a_silent_system_scores_zero_without_failing(tiny_bench, tmp_path):
    collect_answers(Silent(), tiny_bench, tmp_path / "silent", progress=False)
    report = score_run(tiny_bench, tmp_path / "silent", progress=False)
    assert report["overall"]["factuality"] == 0 and report["overall"]["chat"] == 1.0
    assert report["overall"]["text_speech_wer"] is None  # no text to compare


def test_a_run_directory_belongs_to_one_system_and_benchmark(reference_run, tiny_bench, tmp_path):
    out, _ = reference_run
    with pytest.raises(RunError, match="another model"):
        collect_answers(Silent(), tiny_bench, out, progress=False)
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(RunError, match="not empty"):
        collect_answers(Silent(), tiny_bench, tmp_path, progress=False)
    unfinished = tmp_path / "unfinished"
    first = Recorder(Silent(), fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        collect_answers(first, tiny_bench, unfinished, progress=False)
    with pytest.raises(RunError, match="have no answer yet"):
        score_run(tiny_bench, unfinished, progress=False)
    assert json.loads((unfinished / "run.json").read_text())["bench_sha256"] == tiny_bench.sha256


def test_the_reference_system_refuses_questions_it_has_not_seen(tiny_bench):
    system = ReferenceSystem(tiny_bench.directory)
    with pytest.raises(ValueError, match="only answers the questions"):
        system.respond(np.zeros(16000, np.float32), 16000)


def _tiny_spoken_lm(root):
    """An untrained end-to-end system (tiny tokenizer, LM and vocoder): it answers with noise, fast."""
    from aqaa.lm.generate import SamplingConfig
    from aqaa.lm.model import LM_CONFIG_FILE, LMConfig, build_model
    from aqaa.lm.spoken import SpokenLMConfig, save_system
    from aqaa.vocab import Vocabulary, default_styles, train_text_tokenizer
    from aqaa.vocoder import TokenLayout
    from tests.codec.helpers import tiny_tokenizer
    from tests.vocoder.helpers import tiny_vocoder

    tokenizer = tiny_tokenizer()
    tokenizer.save(root / "tokenizer")
    texts = ["what is seven plus five", "seven plus five is twelve", "the capital of france is paris"]
    vocab = Vocabulary(train_text_tokenizer(texts, vocab_size=300, min_frequency=1), 16, 32, default_styles())
    model = build_model(LMConfig(hidden_size=32, layers=2, heads=4, kv_heads=2, ffn=64), vocab, seed=3)
    model.save_pretrained(str(root / "lm"))
    vocab.save(root / "lm")
    (root / "lm" / LM_CONFIG_FILE).write_text(json.dumps({"layout": "aligned", "streams": "dual"}))
    tiny_vocoder(TokenLayout.from_tokenizer(tokenizer.config)).save(root / "vocoder")
    save_system(root, SpokenLMConfig(name="tiny-lm", sampling=SamplingConfig(temperature=1.0, seed=0,
                                                                             max_new_tokens=48), max_len=1024))
    return root


def test_a_tiny_end_to_end_model_gets_a_score_in_every_dimension(tiny_bench, tmp_path):
    from aqaa.eval.run import run_benchmark

    system = _tiny_spoken_lm(tmp_path / "system")
    report = run_benchmark(system, tiny_bench.directory, tmp_path / "run", progress=False)
    assert set(report["dimensions"]) == set(GROUPS)
    for summary in report["dimensions"].values():
        assert summary["score"] is not None and 1 <= summary["chat"] <= 5
    assert report["overall"]["factuality"] < 50  # an untrained model does not know the answers
    for name in ("report.json", "report.md", "radar.png"):
        assert (tmp_path / "run" / name).is_file()
