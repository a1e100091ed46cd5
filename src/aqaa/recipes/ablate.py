"""Recipe: train several variants of the speech LM at the same budget and put their figures side by side.

    aqaa ablate configs/ablation/codebooks.yaml     # dual codebooks vs semantic-only vs linguistic-only
    aqaa ablate configs/ablation/layouts.yaml       # the paper's Table 1: output layouts

The config names a base LM recipe, a folder for the runs, and the variants (each a mapping of overrides of the
base recipe's keys). Every variant trains with `aqaa train lm`'s recipe (resumable: rerunning the ablation
continues where it stopped and skips finished variants), then its last validation figures are collected. With a
`benchmark`, each variant is also assembled into a spoken system (the given tokenizer and vocoder around its LM)
and run through the spoken benchmark, adding Chat, Relevance, Factuality and text–speech consistency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqaa.checkpoint import write_json
from aqaa.configs import from_dict, load_yaml

# The paper's Table 1 columns, then how closely the answer's speech says its own text (a layout's main risk).
BENCHMARK_COLUMNS = ("chat", "relevance", "factuality", "text_speech_consistency")


@dataclass
class AblationConfig:
    base: str = "configs/lm/ablation.yaml"  # the LM recipe every variant starts from
    run_root: str = "runs/ablation"
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: ["val_loss", "val_ppl_linguistic", "val_ppl_semantic",
                                                         "val_ppl_text", "val_gen_text_exact"])
    benchmark: str | None = None  # a benchmark directory (aqaa eval build-bench) to score each variant on
    vocoder: str = "models/vocoder"  # used with `benchmark`: the voice of every variant


def load_config(path: str | Path) -> AblationConfig:
    config = from_dict(AblationConfig, load_yaml(path, "ablation config"), str(path))
    if not config.variants:
        raise ValueError(f"{path}: no variants to compare")
    return config


def last_validation(run_dir: Path) -> dict[str, float]:
    """The latest record with validation figures in a run's training log."""
    log = run_dir / "lm" / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    evaluated = [r for r in records if any(k.startswith("val_") for k in r)]
    if not evaluated:
        raise ValueError(f"{log}: no validation figures (did the run train?)")
    return evaluated[-1]


def run_variant(config: AblationConfig, name: str) -> dict[str, Any]:
    from aqaa.recipes.train_lm import main as train_lm

    root = Path(config.run_root) / name
    overrides = {"run_dir": str(root), "out": str(root / "model"), **config.variants[name]}
    train_lm(config.base, overrides=overrides)
    result: dict[str, Any] = {"variant": name, "overrides": config.variants[name]}
    record = last_validation(root)
    result.update({k: record.get(k) for k in config.metrics}, step=record["step"], seconds=record["seconds"])
    if config.benchmark:
        result.update(benchmark_variant(config, root))
    return result


def benchmark_variant(config: AblationConfig, root: Path) -> dict[str, Any]:
    """Assemble the variant into a spoken system and score it on the benchmark."""
    from aqaa.eval.run import run_benchmark
    from aqaa.lm.spoken import SpokenLMConfig, save_system
    from aqaa.recipes.train_lm import load_config as load_lm_config

    lm = load_lm_config(config.base, {"run_dir": str(root), "out": str(root / "model")})
    system = root / "system"
    save_system(system, SpokenLMConfig(name=root.name, tokenizer=str(Path(lm.tokenizer).resolve()),
                                       lm=str((root / "model").resolve()), vocoder=str(Path(config.vocoder).resolve())))
    report = run_benchmark(system, config.benchmark, root / "eval")
    return {k: report["overall"][k] for k in BENCHMARK_COLUMNS}


def main(config_path: str | Path, only: list[str] | None = None) -> list[dict[str, Any]]:
    config = load_config(config_path)
    names = only or list(config.variants)
    unknown = sorted(set(names) - set(config.variants))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; the config has {list(config.variants)}")
    results = []
    for name in names:
        print(f"variant {name}: {config.variants[name]}")
        results.append(run_variant(config, name))
        write_json(Path(config.run_root) / "results.json", {"config": str(config_path), "results": results})
    table = markdown_table(results, config.metrics + (list(BENCHMARK_COLUMNS) if config.benchmark else []))
    (Path(config.run_root) / "results.md").write_text(table + "\n")
    print(table)
    return results


def markdown_table(results: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| variant | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in results:
        cells = ["" if r.get(c) is None else (f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]))
                 for c in columns]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
