"""Recipe: measure a trained tokenizer on its recipe's caches (train for fitting probes, test for scoring).

Prints the headline figures last, one `name: value` per line, and writes the whole report as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from aqaa.checkpoint import write_json
from aqaa.codec.data import FeatureCache
from aqaa.codec.evaluate import (
    alignment_errors,
    code_ctc_probe,
    codebook_usage,
    encode_cache,
    phone_error_rates,
    prosody_probe,
    speaker_probe,
)
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.recipes.train_tokenizer import ALIGNMENT_VOICES, load_config

HELD_OUT_ALIGNMENT_VOICE = "flite:kal"


def main(config_path: str | Path, model_dir: str | Path | None = None, out: str | Path | None = None,
         quick: bool = False) -> dict[str, Any]:
    config = load_config(config_path)
    torch.set_num_threads(config.threads)
    model_dir = Path(model_dir or config.out)
    tokenizer = AudioTokenizer.from_pretrained(model_dir)
    cache_dir = Path(config.run_dir) / "cache"
    train_cache, test_cache = FeatureCache(cache_dir / "train"), FeatureCache(cache_dir / "test")
    started = time.time()
    train = encode_cache(tokenizer, train_cache, 1500 if quick else 6000, desc="encoding train")
    test = encode_cache(tokenizer, test_cache, 300 if quick else None, desc="encoding test")
    sizes = {s: getattr(tokenizer.config, s).codebook_size for s in ("linguistic", "semantic")}
    texts = [m["text"] for m in test_cache.meta if m["side"] == "answer"][: 10 if quick else 40]
    probe_steps = 200 if quick else 800
    report: dict[str, Any] = {
        "model": str(model_dir),
        "train_utterances": len(train), "test_utterances": len(test),
        "phone_error_rate": phone_error_rates(test),
        "code_ctc_probe_per": {
            "linguistic_codes": code_ctc_probe(train, test, sizes["linguistic"], probe_steps),
            "constant_input": code_ctc_probe(train, test, sizes["linguistic"], probe_steps, constant_input=True),
        },
        "prosody_probe": {s: prosody_probe(train, test, sizes[s], s) for s in sizes},
        "speaker_probe": {s: speaker_probe(train, sizes[s], s) for s in sizes},
        "codebook_usage": {"train": codebook_usage(train, tokenizer), "test": codebook_usage(test, tokenizer)},
        "alignment": alignment_errors(tokenizer, texts, [*ALIGNMENT_VOICES, HELD_OUT_ALIGNMENT_VOICE]),
        "alignment_delay_ms": tokenizer.config.linguistic.alignment_delay_ms,
    }
    report["seconds"] = round(time.time() - started, 1)
    out = Path(out or model_dir / "report.json")
    write_json(out, report)
    usage = report["codebook_usage"]["train"]
    headline = {
        "phone_error_rate_test": report["phone_error_rate"]["all"],
        "code_probe_per": report["code_ctc_probe_per"]["linguistic_codes"],
        "code_probe_per_chance": report["code_ctc_probe_per"]["constant_input"],
        "semantic_f0_r": report["prosody_probe"]["semantic"]["f0_r"],
        "semantic_energy_r": report["prosody_probe"]["semantic"]["energy_r"],
        "semantic_rate_r": report["prosody_probe"]["semantic"]["speaking_rate_r"],
        "speaker_id_semantic": report["speaker_probe"]["semantic"]["accuracy"],
        "speaker_id_linguistic": report["speaker_probe"]["linguistic"]["accuracy"],
        "linguistic_used": usage["linguistic"]["used_fraction"],
        "linguistic_perplexity": usage["linguistic"]["perplexity"],
        "semantic_used": usage["semantic"]["used_fraction"],
        "semantic_perplexity": usage["semantic"]["perplexity"],
        "alignment_phone_ms_awb": report["alignment"]["flite:awb"]["median_phone_boundary_error_ms"],
        "alignment_word_ms_awb": report["alignment"]["flite:awb"]["median_word_boundary_error_ms"],
    }
    print(f"report: {out}")
    for name, value in headline.items():
        print(f"{name}: {value}")
    return report
