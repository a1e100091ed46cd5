import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.codec.data import FeatureCache
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.data.build import build_corpus
from aqaa.data.config import CorpusConfig
from aqaa.recipes.train_tokenizer import _masked_relative_change, main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tokenizer" / "tiny.yaml"
pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                reason="synthesisers not installed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizer")
    corpus = root / "corpus"
    build_corpus(CorpusConfig(name="t", seed=5, conversations=16, shard_size=8, validation_fraction=0.25,
                              test_fraction=0.25), corpus, workers=2, progress=False)
    overrides = {"corpus": str(corpus), "run_dir": str(root / "run"), "out": str(root / "tok")}
    main(CONFIG, overrides=overrides)
    return root, overrides


def test_recipe_trains_every_stage_and_logs_falling_loss(trained):
    root, _ = trained
    tokenizer = AudioTokenizer.from_pretrained(root / "tok")
    assert tokenizer.config.linguistic.codebook_size == 16 and bool(tokenizer.linguistic.fitted)
    report = json.loads((root / "tok" / "codebook_report.json").read_text())
    assert set(report) == {"linguistic", "semantic"} and report["linguistic"]["used"] > 1
    for stage in ("linguistic", "semantic"):
        log = [json.loads(line) for line in (root / "run" / stage / "log.jsonl").read_text().splitlines()]
        assert log[-1]["step"] == 20 and log[-1]["loss"] < log[0]["loss"] and "val_loss" in log[-1]


def test_voice_tuning_speaks_answers_in_new_voices_and_the_tokenizer_uses_its_encoder(trained):
    root, _ = trained
    voices = FeatureCache(root / "run" / "cache" / "voices.safetensors")
    answers = {m["text"] for m in FeatureCache(root / "run" / "cache" / "train.safetensors").meta
               if m["side"] == "answer"}
    assert len(voices) == 6 and {m["voice"] for m in voices.meta} == {"flite:kal16"}
    assert {m["text"] for m in voices.meta} <= answers and all(0.85 <= m["rate"] <= 1.15 for m in voices.meta)
    log = [json.loads(line) for line in (root / "run" / "voice_tuning" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10 and {"hold", "code_ctc", "commitment", "val_ctc"} <= set(log[-1])
    tuned = load_file(str(root / "run" / "voice_tuning" / "model.safetensors"))
    before = load_file(str(root / "run" / "linguistic" / "model.safetensors"))
    shipped = AudioTokenizer.from_pretrained(root / "tok").linguistic.state_dict()
    name = "encoder.stack.blocks.0.conv.weight"
    assert not torch.equal(tuned[name], before[name])
    assert torch.equal(tuned["ctc_head.weight"], before["ctc_head.weight"])  # code_weight > 0 freezes the head
    assert torch.allclose(shipped[name], tuned[name])


def test_semantic_voice_tuning_moves_the_encoder_not_the_codebook_and_the_tokenizer_uses_it(trained):
    root, _ = trained
    log = [json.loads(line) for line in
           (root / "run" / "semantic_voice_tuning" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10 and {"hold", "code_hold", "own_mel", "new_mel", "val_mel"} <= set(log[-1])
    tuned = load_file(str(root / "run" / "semantic_voice_tuning" / "model.safetensors"))
    before = load_file(str(root / "run" / "semantic" / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("vq.", "to_code."))]
    assert frozen and all(torch.equal(tuned[k], before[k]) for k in frozen)
    name = "encoder.stack.blocks.0.conv.weight"
    assert not torch.equal(tuned[name], before[name])
    assert torch.allclose(AudioTokenizer.from_pretrained(root / "tok").semantic.state_dict()[name], tuned[name])


def test_masked_relative_change_ignores_padding():
    old = torch.ones(2, 4, 3)
    new = old.clone()
    new[0, 3] = 5.0  # past utterance 0's length: padding
    assert float(_masked_relative_change(new, old, torch.tensor([3, 4]))) == 0.0
    new[1, 0] = 3.0  # (3 - 1)^2 over 3 of 7 frames x 3 channels, relative to a mean square of 1
    assert float(_masked_relative_change(new, old, torch.tensor([3, 4]))) == pytest.approx(4 * 3 / 21)


def test_rerun_skips_finished_stages(trained, capsys):
    root, overrides = trained
    before = (root / "tok" / "model.safetensors").stat().st_mtime_ns
    main(CONFIG, overrides=overrides)
    assert "stage semantic: already done" in capsys.readouterr().out
    assert (root / "tok" / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="unknown stages"):
        main(CONFIG, stages=["tokenize"], overrides=overrides)


def test_a_tokenizer_older_than_its_voice_tuning_is_reassembled(trained, capsys):
    root, overrides = trained
    out, tuned = root / "tok" / "model.safetensors", root / "run" / "voice_tuning" / "model.safetensors"
    stamp = tuned.stat().st_mtime - 10  # assembled before the encoder heard more voices
    os.utime(out, (stamp, stamp))
    main(CONFIG, overrides=overrides)
    assert "stage assemble: already done" not in capsys.readouterr().out
    assert out.stat().st_mtime >= tuned.stat().st_mtime


def test_tokenize_command_prints_interleaved_ids(trained, tmp_path):
    root, _ = trained
    from aqaa.data.speech import Prosody, synthesize, voice_from_name

    wav = synthesize("what is seven plus five", voice_from_name("flite:slt"), Prosody(), 22050).wav
    sf.write(tmp_path / "q.wav", wav, 22050)
    runner = CliRunner()
    result = runner.invoke(app, ["tokenize", str(tmp_path / "q.wav"), "--model", str(root / "tok"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    groups = len(data["ids"]) // 5
    assert groups == min(len(data["linguistic"]) // 2, len(data["semantic"]) // 3) > 0
    assert data["ids"][:2] == data["linguistic"][:2] and data["ids"][2] == 16 + data["semantic"][0]
    plain = runner.invoke(app, ["tokenize", str(tmp_path / "q.wav"), "--model", str(root / "tok")])
    assert plain.output.split() == [str(i) for i in data["ids"]]
    missing = runner.invoke(app, ["tokenize", str(tmp_path / "nope.wav"), "--model", str(root / "tok")])
    assert missing.exit_code == 2 and "nope.wav" in missing.output


def test_align_command_prints_word_times(trained, tmp_path):
    root, _ = trained
    from aqaa.codec.phones import text_to_phone_ids
    from aqaa.data.speech import Prosody, synthesize, voice_from_name

    wav = synthesize("the cat sat on the mat", voice_from_name("flite:awb"), Prosody(), 16000).wav
    sf.write(tmp_path / "a.wav", wav, 16000)
    runner = CliRunner()
    result = runner.invoke(app, ["align", str(tmp_path / "a.wav"), "the cat sat on the mat", "--model",
                                 str(root / "tok"), "--phones"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [w["word"] for w in data["words"]] == ["the", "cat", "sat", "on", "the", "mat"]
    assert len(data["phones"]) == len(text_to_phone_ids("the cat sat on the mat")[0])
    assert all(w["end"] >= w["start"] for w in data["words"])
    short = runner.invoke(app, ["align", str(tmp_path / "a.wav"), "word " * 80, "--model", str(root / "tok")])
    assert short.exit_code == 2 and "phones need" in short.output


def test_voice_tuning_with_codes_resumes_a_run_begun_without_them(trained, tmp_path):
    root, overrides = trained
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    checkpoint = run / "voice_tuning" / "model.safetensors"
    weights = load_file(str(checkpoint))
    weights["centroids"] = torch.zeros_like(weights["centroids"])  # as a run with code_weight 0 saves it
    save_file(weights, str(checkpoint))
    tuning = {"code_weight": 1.0, "training": {"steps": 15, "lr": 0.001, "warmup_steps": 2, "max_frames": 3000,
                                               "log_every": 5, "eval_every": 5, "checkpoint_every": 5}}
    main(CONFIG, stages=["voice_tuning"], overrides={**overrides, "run_dir": str(run), "voice_tuning": tuning})
    log = [json.loads(line) for line in (run / "voice_tuning" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 15 and log[-1]["code_ctc"] > 0
    codebook = load_file(str(run / "linguistic_codebook.safetensors"))["centroids"]
    assert torch.equal(load_file(str(checkpoint))["centroids"], codebook)


def test_semantic_voice_tuning_with_a_free_codebook_moves_the_codebook(trained, tmp_path):
    root, overrides = trained
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    shutil.rmtree(run / "semantic_voice_tuning")
    tuning = {"codebook": "free", "hold_weight": 0.0,
              "training": {"steps": 4, "lr": 0.001, "warmup_steps": 1, "max_frames": 3000, "eval_every": 4}}
    main(CONFIG, stages=["semantic_voice_tuning"],
         overrides={**overrides, "run_dir": str(run), "semantic_voice_tuning": tuning})
    tuned = load_file(str(run / "semantic_voice_tuning" / "model.safetensors"))
    before = load_file(str(run / "semantic" / "model.safetensors"))
    moved = [k for k in before if k.startswith("vq.") and not torch.equal(tuned[k], before[k])]
    assert moved  # the EMA codebook followed the batches
    log = [json.loads(line) for line in (run / "semantic_voice_tuning" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["hold"] == 0.0 and log[-1]["code_hold"] == 0.0  # nothing held, so nothing computed to hold


def test_a_free_codebook_cannot_hold_its_codes(trained):
    _, overrides = trained
    tuning = {"codebook": "free", "code_hold_weight": 1.0, "training": {"steps": 4}}
    with pytest.raises(ValueError, match="code_hold_weight"):
        main(CONFIG, stages=["semantic_voice_tuning"], overrides={**overrides, "semantic_voice_tuning": tuning})
    with pytest.raises(ValueError, match="'frozen' or 'free'"):
        main(CONFIG, stages=["semantic_voice_tuning"],
             overrides={**overrides, "semantic_voice_tuning": {"codebook": "loose"}})
