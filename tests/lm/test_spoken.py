import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.generate import SamplingConfig
from aqaa.lm.layouts import parse_answer
from aqaa.lm.model import LM_CONFIG_FILE, LMConfig, build_model
from aqaa.lm.spoken import SpokenLM, SpokenLMConfig, TrimConfig, save_system
from aqaa.pipeline import SpokenDialogueModel, SpokenTurn, load_spoken_model
from aqaa.vocab import Vocabulary, default_styles, train_text_tokenizer
from aqaa.vocoder import TokenLayout
from tests.codec.helpers import speechy, tiny_tokenizer
from tests.vocoder.helpers import tiny_vocoder

TEXTS = ["what is seven plus five", "seven plus five is twelve", "the capital of france is paris"]


@pytest.fixture(scope="module")
def system_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("system")
    tokenizer = tiny_tokenizer()
    tokenizer.save(root / "tokenizer")
    vocab = Vocabulary(train_text_tokenizer(TEXTS, vocab_size=300, min_frequency=1), 16, 32, default_styles())
    model = build_model(LMConfig(hidden_size=32, layers=2, heads=4, kv_heads=2, ffn=64), vocab, seed=3)
    model.save_pretrained(str(root / "lm"))
    vocab.save(root / "lm")
    (root / "lm" / LM_CONFIG_FILE).write_text(json.dumps({"layout": "aligned", "streams": "dual"}))
    tiny_vocoder(TokenLayout.from_tokenizer(tokenizer.config)).save(root / "vocoder")
    save_system(root, SpokenLMConfig(name="tiny", sampling=SamplingConfig(temperature=1.0, seed=0,
                                                                          max_new_tokens=120), max_len=1024))
    return root


def test_system_loads_by_kind_and_answers_with_audio_and_text(system_dir):
    system = load_spoken_model(system_dir)
    assert isinstance(system, SpokenLM) and isinstance(system, SpokenDialogueModel)
    answer = system.respond(speechy(1.0), 16000)
    ids = answer.extra["answer_ids"]
    text_ids, audio_ids = parse_answer(system.vocab, ids, system.layout, require_end=not answer.extra["truncated"])
    assert answer.text == system.vocab.decode_text(text_ids).strip()
    groups = len(audio_ids) // 5
    assert answer.sample_rate == 16000 and len(answer.audio) == groups * 12 * 160  # 120 ms per group
    assert answer.extra["style"] in system.vocab.styles
    assert answer.timings["total"] >= answer.timings.get("first_audio", 0)
    again = system.respond(speechy(1.0), 16000)
    assert again.extra["answer_ids"] == ids  # the system's seed makes answers reproducible


def test_a_question_too_quiet_for_the_tokenizer_is_read_louder(system_dir):
    system = load_spoken_model(system_dir)
    wav = speechy(1.0)
    quiet = (wav * (10 ** (-34 / 20) / np.abs(wav).max())).astype(np.float32)
    lifted, gain = system.tokenizer.lift_quiet(quiet)
    assert gain == pytest.approx(24.0, abs=1e-3)
    assert system.prompt(quiet, 16000) == system.prompt(lifted, 16000) != system.prompt(quiet * 10, 16000)
    answer = system.respond(quiet, 16000)
    assert answer.extra["question_gain_db"] == pytest.approx(24.0, abs=0.01)
    assert system.respond(wav, 16000).extra["question_gain_db"] == 0.0
    # earlier questions in the history are read the same way
    history = [SpokenTurn("human", quiet, 16000), SpokenTurn("assistant", answer.audio, 16000, answer.text,
                                                             dict(answer.extra))]
    with_lifted = [SpokenTurn("human", lifted, 16000), history[1]]
    assert system.prompt(wav, 16000, history) == system.prompt(wav, 16000, with_lifted)


def test_long_silences_around_a_question_are_cut_to_the_corpus_margins(system_dir):
    system = load_spoken_model(system_dir)
    wav = speechy(1.0)
    padded = np.concatenate([np.zeros(32000, dtype=np.float32), wav, np.zeros(24000, dtype=np.float32)])
    answer = system.respond(padded, 16000)
    keep = system.config.trim
    assert answer.extra["question_cut_start_s"] == pytest.approx(2.0 - keep.keep_lead_s, abs=0.011)
    assert answer.extra["question_cut_end_s"] == pytest.approx(1.5 - keep.keep_trail_s, abs=0.011)
    start, end = round(answer.extra["question_cut_start_s"] * 16000), round(answer.extra["question_cut_end_s"] * 16000)
    assert system.prompt(padded, 16000) == system.prompt(padded[start: len(padded) - end], 16000)
    assert system.respond(wav, 16000).extra["question_cut_start_s"] == 0.0  # speechy has no silence to cut
    with pytest.raises(ValueError, match="keep_lead_s"):
        TrimConfig(keep_lead_s=-1.0)
    keep.enabled = False
    try:
        assert system.prompt(padded, 16000) != system.prompt(padded[start: len(padded) - end], 16000)
    finally:
        keep.enabled = True


def test_stream_yields_audio_before_the_answer_ends(system_dir):
    system = load_spoken_model(system_dir)
    events = list(system.stream(speechy(1.0), 16000, seed=1))
    kinds = [e.kind for e in events]
    assert kinds[0] == "style" and kinds[-1] == "end"
    audio = [e for e in events if e.kind == "audio"]
    if len(system.last["answer_ids"]) > 40:
        assert len(audio) >= 2 and audio[0].seconds <= events[-1].seconds


def test_history_with_own_ids_or_with_audio_and_text(system_dir):
    system = load_spoken_model(system_dir)
    first = system.respond(speechy(1.0, seed=1), 16000)
    history = [SpokenTurn("human", speechy(1.0, seed=1), 16000),
               SpokenTurn("assistant", first.audio, first.sample_rate, first.text, dict(first.extra))]
    prompt = system.prompt(speechy(0.5), 16000, history)
    own = [system.vocab.style(first.extra["style"]), *first.extra["answer_ids"]]
    assert any(prompt[i:i + len(own)] == own for i in range(len(prompt)))  # the exact ids it generated
    # a history from elsewhere (no ids): the answer's audio is re-tokenised and its text placed
    other = [SpokenTurn("human", speechy(1.0, seed=1), 16000),
             SpokenTurn("assistant", speechy(1.2, seed=2), 16000, "seven plus five is twelve")]
    prompt = system.prompt(speechy(0.5), 16000, other)
    assert prompt.count(system.vocab.bot) == 4 and prompt[-len(system.vocab.turn_header("assistant")):] == \
        system.vocab.turn_header("assistant")
    assert system.respond(speechy(0.5), 16000, other).sample_rate == 16000
    with pytest.raises(ValueError, match="no audio"):
        system.respond(np.zeros(0, dtype=np.float32), 16000)


def test_int8_lm_weights_answer_and_bad_formats_are_named(system_dir):
    config = json.loads((system_dir / "config.json").read_text())
    config.update(lm=str(system_dir / "lm"), tokenizer=str(system_dir / "tokenizer"),
                  vocoder=str(system_dir / "vocoder"))
    system = SpokenLM.from_dir(system_dir, {**config, "lm_weights": "int8"})
    assert system.generator.decoder.weights == "int8"
    answer = system.respond(speechy(1.0), 16000)
    assert answer.extra["answer_ids"] and len(answer.audio) > 0
    with pytest.raises(ValueError, match="weights"):
        SpokenLM.from_dir(system_dir, {**config, "lm_weights": "int4"})


def test_missing_parts_and_kinds_are_named(tmp_path, system_dir):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_spoken_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "aqaa.spoken_lm", "vocoder": "nowhere",
                                                      "tokenizer": str(system_dir / "tokenizer"),
                                                      "lm": str(system_dir / "lm")}))
    with pytest.raises(FileNotFoundError, match="vocoder"):
        load_spoken_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "mystery"}))
    with pytest.raises(ValueError, match="mystery"):
        load_spoken_model(tmp_path)


def test_answer_command_writes_the_wav(system_dir, tmp_path):
    sf.write(tmp_path / "q.wav", speechy(1.0), 16000)
    result = CliRunner().invoke(app, ["answer", str(tmp_path / "q.wav"), "--model", str(system_dir), "-o",
                                      str(tmp_path / "a.wav"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    wav, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16000 and abs(len(wav) / sr - data["seconds"]) < 1e-3
    assert data["question_gain_db"] == 0.0
    sf.write(tmp_path / "quiet.wav", speechy(1.0) * 0.01, 16000, subtype="FLOAT")  # peaks at -50 dBFS
    quiet = CliRunner().invoke(app, ["answer", str(tmp_path / "quiet.wav"), "--model", str(system_dir), "-o",
                                     str(tmp_path / "b.wav")])
    assert quiet.exit_code == 0 and "too quiet for the tokenizer" in quiet.output, quiet.output
    sf.write(tmp_path / "late.wav", np.concatenate([np.zeros(48000), speechy(1.0)]), 16000)
    late = CliRunner().invoke(app, ["answer", str(tmp_path / "late.wav"), "--model", str(system_dir), "-o",
                                    str(tmp_path / "c.wav")])
    assert late.exit_code == 0 and "silence cut from the question: 2.60 s before it" in late.output, late.output
    missing = CliRunner().invoke(app, ["answer", str(tmp_path / "nope.wav"), "--model", str(system_dir)])
    assert missing.exit_code == 2 and "nope.wav" in missing.output


def test_demo_answers_the_bundled_question_with_a_system(system_dir, tmp_path):
    sf.write(tmp_path / "q.wav", speechy(1.0), 16000)
    (tmp_path / "q.txt").write_text("a gliding tone\n")
    result = CliRunner().invoke(app, ["demo", "--model", str(system_dir), "--question", str(tmp_path / "q.wav"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "'a gliding tone'" in result.stdout and "answer" in result.stdout
    assert sf.read(tmp_path / "out" / "answer.wav")[1] == 16000 and (tmp_path / "out" / "question.wav").is_file()
