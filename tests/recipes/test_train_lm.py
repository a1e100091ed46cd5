import json
import shutil
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM

from aqaa.data.build import build_corpus
from aqaa.data.config import CorpusConfig
from aqaa.lm.data import TokenCache
from aqaa.lm.generate import Generator, SamplingConfig
from aqaa.lm.layouts import Turn, build_prompt, parse_answer
from aqaa.recipes.train_lm import LM_CONFIG_FILE, main
from aqaa.vocab import Vocabulary
from tests.codec.helpers import tiny_tokenizer
from tests.helpers import run_on_two_cpu_processes

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lm" / "tiny.yaml"
pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                reason="synthesisers not installed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    build_corpus(CorpusConfig(name="t", seed=11, conversations=24, shard_size=12, validation_fraction=0.25,
                              test_fraction=0.1), root / "corpus", workers=2, progress=False)
    tiny_tokenizer().save(root / "tok")
    overrides = {"corpus": str(root / "corpus"), "tokenizer": str(root / "tok"), "token_cache": str(root / "tokens"),
                 "run_dir": str(root / "run"), "out": str(root / "out")}
    main(CONFIG, overrides=overrides)
    return root, overrides


def test_recipe_trains_lowers_the_loss_and_exports(trained):
    root, _ = trained
    log = [json.loads(line) for line in (root / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 24 and log[-1]["loss"] < 0.8 * log[0]["loss"]
    assert {"val_loss", "val_ppl_semantic", "val_ppl_linguistic", "val_gen_ended"} <= set(log[-1])
    packing = json.loads((root / "run" / "lm" / "packing.jsonl").read_text().splitlines()[0])
    assert packing["dropped_too_long"] == 0 and packing["sequences"] > 0
    exported = json.loads((root / "out" / LM_CONFIG_FILE).read_text())
    assert exported["layout"] == "aligned" and exported["trained_steps"] == 24
    vocab = Vocabulary.load(root / "out")
    model = AutoModelForCausalLM.from_pretrained(str(root / "out")).eval()
    assert model.config.vocab_size == vocab.size
    cache = TokenCache(root / "tokens" / "validation")
    gen = Generator(model, vocab, "aligned", SamplingConfig(temperature=1.0, seed=0, max_new_tokens=200), max_len=600)
    ling, sem = cache.codes(0, "query")
    from aqaa.codec.interleave import interleave

    prompt = build_prompt(vocab, [Turn("human", audio_ids=interleave(ling, sem, vocab.audio))], "aligned")
    events = list(gen.generate(prompt, predict_style=True))
    assert events[0].kind == "style" and events[0].text in vocab.styles
    if not events[-1].truncated:
        parse_answer(vocab, gen.last_answer_ids, "aligned")


def test_token_cache_holds_both_sides_of_every_example(trained):
    root, _ = trained
    cache = TokenCache(root / "tokens" / "train")
    assert len(cache) > 0
    for i in range(len(cache)):
        for side in ("query", "answer"):
            ling, sem = cache.codes(i, side)
            seconds = cache.examples[i][f"{side}_seconds"]
            assert abs(len(sem) - seconds * 25) <= 2 and abs(len(ling) - seconds * 50 / 3) <= 2
            assert int(ling.max()) < 16 and int(sem.max()) < 32


def test_rerun_resumes_and_extends_training(trained):
    root, overrides = trained
    before = (root / "run" / "lm" / "log.jsonl").read_text().splitlines()
    config = json.loads((root / "out" / LM_CONFIG_FILE).read_text())["recipe"]
    training = dict(config["training"], steps=28)
    main(CONFIG, overrides={**overrides, "training": training})
    after = [json.loads(line) for line in (root / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    assert after[: len(before)] == [json.loads(line) for line in before]  # history kept
    assert after[-1]["step"] == 28 and [r["step"] for r in after[len(before):]] == [25, 28]
    assert json.loads((root / "out" / LM_CONFIG_FILE).read_text())["trained_steps"] == 28
    assert not list((root / "run").rglob("*.pt")) and not list((root / "run").rglob("*.bin"))


def test_init_fine_tunes_an_exported_lm_and_refuses_another_architecture(trained, tmp_path):
    root, overrides = trained
    config = json.loads((root / "out" / LM_CONFIG_FILE).read_text())["recipe"]
    training = dict(config["training"], steps=2, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2)
    tuned = {**overrides, "run_dir": str(tmp_path / "run"), "out": str(tmp_path / "out"), "init": str(root / "out"),
             "training": training}
    base = json.loads((root / "out" / LM_CONFIG_FILE).read_text())["trained_steps"]
    main(CONFIG, overrides=tuned)
    scratch = [json.loads(line) for line in (root / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    log = [json.loads(line) for line in (tmp_path / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 1 and log[0]["loss"] < 0.8 * scratch[0]["loss"], (log, scratch)  # starts trained
    assert (tmp_path / "run" / "vocab" / "aqaa_vocab.json").read_text() == (root / "out" / "aqaa_vocab.json").read_text()
    exported = json.loads((tmp_path / "out" / LM_CONFIG_FILE).read_text())
    assert exported["trained_steps"] == 2 and exported["total_trained_steps"] == base + 2
    in_place = tmp_path / "in_place"  # init and out the same directory: the export must still happen
    shutil.copytree(tmp_path / "out", in_place)
    main(CONFIG, overrides={**tuned, "run_dir": str(tmp_path / "run2"), "out": str(in_place), "init": str(in_place)})
    exported = json.loads((in_place / LM_CONFIG_FILE).read_text())
    assert exported["recipe"]["run_dir"] == str(tmp_path / "run2") and exported["total_trained_steps"] == base + 4
    for run in ("run", "run2"):  # runs begun before init.json was recorded export with the same lineage
        (tmp_path / run / "init.json").unlink()
    main(CONFIG, stages=["export"], overrides=tuned)
    assert json.loads((tmp_path / "out" / LM_CONFIG_FILE).read_text())["total_trained_steps"] == base + 2
    main(CONFIG, stages=["export"],
         overrides={**tuned, "run_dir": str(tmp_path / "run2"), "out": str(in_place), "init": str(in_place)})
    assert json.loads((in_place / LM_CONFIG_FILE).read_text())["total_trained_steps"] == base + 4
    model = dict(config["model"], layers=config["model"]["layers"] + 1)
    with pytest.raises(ValueError, match=r"another architecture.*layers"):
        main(CONFIG, overrides={**tuned, "run_dir": str(tmp_path / "other"), "model": model})
    with pytest.raises(FileNotFoundError, match="no exported LM"):
        main(CONFIG, overrides={**tuned, "run_dir": str(tmp_path / "none"), "init": str(tmp_path)})


def test_bad_config_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: {aqaa: 1.0, dance: 1.0}\n")
    with pytest.raises(ValueError, match="dance"):
        main(bad)
    bad.write_text("modle: {}\n")
    with pytest.raises(ValueError, match="modle"):
        main(bad)


def test_ablation_trains_each_variant_and_tabulates(trained, tmp_path):
    import yaml

    from aqaa.recipes.ablate import main as ablate

    root, overrides = trained
    base = tmp_path / "base.yaml"
    config = yaml.safe_load(CONFIG.read_text())
    config.update(overrides, training={"steps": 4, "warmup_steps": 1, "log_every": 2, "eval_every": 4},
                  eval={"sequences": 4, "generate": 0})
    base.write_text(yaml.safe_dump(config))
    spec = tmp_path / "ablation.yaml"
    spec.write_text(yaml.safe_dump({"base": str(base), "run_root": str(tmp_path / "runs"),
                                    "variants": {"aligned": {"layout": "aligned"},
                                                 "semantic_only": {"streams": "semantic"}},
                                    "metrics": ["val_loss", "val_ppl_semantic", "val_ppl_linguistic"]}))
    results = ablate(spec)
    assert [r["variant"] for r in results] == ["aligned", "semantic_only"]
    assert results[0]["val_ppl_linguistic"] is not None and results[1]["val_ppl_linguistic"] is None
    table = (tmp_path / "runs" / "results.md").read_text()
    assert "| semantic_only |" in table and "val_ppl_semantic" in table
    assert ablate(spec)[0]["step"] == 4  # a rerun finds the variants trained


def test_recipe_on_two_processes_trains_once_and_exports_once(trained, tmp_path):
    root, overrides = trained
    config = yaml.safe_load(CONFIG.read_text())
    config.update(overrides, run_dir=str(tmp_path / "run"), out=str(tmp_path / "out"))
    config["training"] = dict(config["training"], steps=6)
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(root / "run" / "vocab", tmp_path / "run" / "vocab")
    run = run_on_two_cpu_processes(["-m", "aqaa.recipes.train_lm", str(tmp_path / "lm.yaml")])
    assert run.stdout.count("exported the LM") == 1  # the export waits for the trained weights, on one process
    assert run.stdout.count("model: ") == 1  # one training, in two processes
    assert json.loads((tmp_path / "out" / LM_CONFIG_FILE).read_text())["trained_steps"] == 6
