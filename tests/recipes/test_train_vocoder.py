import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aqaa.data.build import build_corpus
from aqaa.data.config import CorpusConfig
from aqaa.recipes.eval_vocoder import main as evaluate
from aqaa.recipes.train_vocoder import main
from aqaa.vocoder import Vocoder

from ..codec.helpers import tiny_tokenizer
from ..vocoder.helpers import random_codes

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vocoder" / "tiny.yaml"
pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                reason="synthesisers not installed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocoder")
    build_corpus(CorpusConfig(name="v", seed=5, conversations=12, shard_size=6, validation_fraction=0.25,
                              test_fraction=0.25), root / "corpus", workers=2, progress=False)
    tiny_tokenizer().save(root / "tokenizer")
    overrides = {"corpus": str(root / "corpus"), "tokenizer": str(root / "tokenizer"), "run_dir": str(root / "run"),
                 "out": str(root / "vocoder")}
    main(CONFIG, stages=["cache", "mel2wav"], overrides=overrides)  # the tokenizer-free stages alone first
    main(CONFIG, overrides=overrides)
    return root, overrides


def test_recipe_trains_every_stage_with_falling_losses(trained):
    root, _ = trained
    for stage in ("mel2wav", "flow"):
        log = [json.loads(line) for line in (root / "run" / stage / "log.jsonl").read_text().splitlines()]
        assert log[-1]["step"] == 20 and log[-1]["loss"] < log[0]["loss"] and "val_loss" in log[-1]
    cache = json.loads((root / "run" / "cache" / "train.json").read_text())["utterances"]
    assert {u["side"] for u in cache} == {"query", "answer"}
    vocoder = Vocoder.from_pretrained(root / "vocoder")
    assert vocoder.layout.semantic_codebook == 32
    wav = vocoder.synthesize(random_codes(3, vocoder.layout))
    assert wav.shape == (36 * 160,) and np.isfinite(wav).all()


def test_rerun_skips_finished_stages(trained, capsys):
    root, overrides = trained
    before = (root / "vocoder" / "model.safetensors").stat().st_mtime_ns
    main(CONFIG, overrides=overrides)
    out = capsys.readouterr().out
    assert "stage flow: already done" in out and "stage mel2wav: already done" in out
    assert (root / "vocoder" / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="unknown stages"):
        main(CONFIG, stages=["vocode"], overrides=overrides)


def test_a_flow_newer_than_the_assembled_vocoder_is_reassembled(trained, capsys):
    """A run resumed with more flow steps must not leave the old vocoder in place as 'already done'."""
    root, overrides = trained
    out = root / "vocoder" / "model.safetensors"
    flow = root / "run" / "flow" / "model.safetensors"
    stamp = flow.stat().st_mtime - 10  # assembled before the flow's last checkpoint
    os.utime(out, (stamp, stamp))
    main(CONFIG, overrides=overrides)
    assert "stage assemble: already done" not in capsys.readouterr().out
    assert out.stat().st_mtime >= flow.stat().st_mtime


def test_flow_without_codes_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the codes stage first"):
        main(CONFIG, stages=["flow"], overrides={"run_dir": str(tmp_path)})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_flow_on_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no CUDA device"):
        main(CONFIG, stages=["flow"], overrides={"run_dir": str(tmp_path), "flow_device": "cuda"})


def test_eval_reports_every_figure(trained, capsys):
    root, _ = trained
    report = evaluate(CONFIG, root / "vocoder", root / "tokenizer", root / "report.json", quick=True,
                      overrides={"run_dir": str(root / "run")}, answers=1, seeds=2)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("wer_ratio:")
    assistant = report["assistant_voice"]
    assert {"original_wer", "phone_error_rate", "steps_0", "steps_1", "steps_2", "steps_4", "steps_10",
            "griffin_lim_10_steps", "copy_synthesis", "crude_codec", "crude_codec_assistant_only"} <= set(assistant)
    assert assistant["crude_codec"]["codebook_size"] == 64 and (root / "run" / "crude_codec_64.safetensors").is_file()
    assert (root / "run" / "crude_codec_64_assistant.safetensors").is_file()
    assert len(assistant["steps_0"]["wer_per_seed"]) == 1  # the prior draws no noise: one seed says it all
    ten = assistant["steps_10"]
    assert len(ten["wer_per_seed"]) == 2 and ten["wer"] == pytest.approx(np.mean(ten["wer_per_seed"]), abs=1e-4)
    assert report["streaming_vs_offline"]["generated_mel_l1"] < 1e-4
    assert set(report["clean_voices"]) == {"flite:kal", "flite:kal16", "flite:rms", "flite:slt",
                                           "festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"}
    assert not report["clean_voices"]["festival:ked_diphone"]["in_training"]
    assert all(0 <= v["resynth_wer"] and 0 <= v["prior_wer"] and v["n"] == 1 for v in report["clean_voices"].values())
    assert all(0 <= v["phone_error_rate"]["codes"] and 0 <= v["crude_codec_wer"] and 0 <= v["copy_synthesis_wer"]
               for v in report["clean_voices"].values())
    for voice in report["clean_voices"].values():  # the round trip pooled over the same seeds as the assistant's
        assert len(voice["resynth_wer_per_seed"]) == 2
        assert voice["resynth_wer"] == pytest.approx(np.mean(voice["resynth_wer_per_seed"]), abs=1e-4)
        assert voice["wer_ratio"] is None or voice["wer_ratio"] == pytest.approx(
            voice["resynth_wer"] / voice["original_wer"], abs=2e-3)
    assert any(line.startswith("clean_slt_wer_ratio:") for line in printed)
    assert json.loads((root / "report.json").read_text())["answers"] == report["answers"] == 1


def test_a_second_leg_fine_tunes_the_flow_on_a_new_tokenizers_codes_with_more_voices(trained, tmp_path):
    root, overrides = trained
    (tmp_path / "run").mkdir()
    shutil.copytree(root / "run" / "cache", tmp_path / "run" / "cache")
    shutil.copytree(root / "run" / "mel2wav", tmp_path / "run" / "mel2wav")
    tiny_tokenizer(seed=1).save(tmp_path / "tokenizer")  # other weights: every copied codes cache is stale
    leg = {**overrides, "tokenizer": str(tmp_path / "tokenizer"), "run_dir": str(tmp_path / "run"),
           "out": str(tmp_path / "vocoder"), "flow_init": str(root / "vocoder"),
           "voices": {"voices": ["flite:slt"], "sentences_per_voice": 3}}
    main(CONFIG, overrides=leg)
    voices = json.loads((tmp_path / "run" / "cache" / "voices.json").read_text())["utterances"]
    assert len(voices) == 3 and {u["voice"] for u in voices} == {"flite:slt"}
    fingerprints = {json.loads((tmp_path / "run" / "cache" / f"{s}_codes.json").read_text())["tokenizer_sha256"]
                    for s in ("train", "validation", "test", "voices")}
    old = json.loads((root / "run" / "cache" / "train_codes.json").read_text())["tokenizer_sha256"]
    assert len(fingerprints) == 1 and old not in fingerprints
    first = [json.loads((run / "flow" / "log.jsonl").read_text().splitlines()[0]) for run in (root / "run", tmp_path / "run")]
    assert first[1]["loss"] < first[0]["loss"]  # it starts where the first leg ended, not from scratch
    with pytest.raises(ValueError, match="flow_init"):
        main(CONFIG, stages=["flow"], overrides={**leg, "flow": {"estimator": {"channels": 8}}})
