"""Recipe: measure a trained vocoder on its recipe's held-out test cache (held-out phrasings and voices).

  assistant voice   neutral test answers: the judge's WER of the originals; of the round trip (tokenize →
                    flow → neural vocoder) at 1, 2, 4 and 10 Euler steps, through the prior alone (0 steps) and
                    through Griffin-Lim; of copy synthesis (the original mel → neural / Griffin-Lim: the mel
                    vocoders alone); and of the issue's crude reference codec (k-means over stacked log-mel frames,
                    fitted on all training voices and on the assistant's answers alone → neural / Griffin-Lim).
                    MCD against the original for each. The round trips are pooled over `seeds` noise draws: one
                    draw's WER moves by ±2.5 points on 54 answers, more than the differences being measured.
  clean voices      the same answer texts spoken by other flite voices (the judge transcribes flite well) and by
                    festival's two voices, which no training heard (a new speaker, and flite's slt speaker
                    through another synthesiser), no augmentation: WER original vs round trip (default steps,
                    pooled over the same seeds; the ratio of the two is the issue's measure), vs the prior
                    alone, vs copy synthesis (the original mel → neural vocoder: what the mel vocoder alone
                    loses) and vs the crude codec → neural vocoder; MCD; each marked as heard in training or
                    not. With each (and the assistant voice), the phone error rate of the tokenizer's CTC head
                    read from its encoder and through the codes: how much of the speech the codes still name
                    before any vocoder runs
  other voices      test questions of the most frequent held-out voices (augmented: noise, rooms): WER original
                    vs round trip, MCD
  streaming         3-group chunks vs offline: mel distances and seam jumps
  speed             offline real-time factor over the evaluated answers (bench/vocoder.py is the reference)

Prints the headline figures last, one `name: value` per line, and writes the whole report as JSON.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from aqaa.checkpoint import write_json
from aqaa.codec.data import FeatureCache, cache_meta
from aqaa.codec.evaluate import clean_phone_error_rates
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.data.speech import Prosody, synthesize, voice_from_name
from aqaa.judge import transcribe_many, wer
from aqaa.recipes.train_vocoder import RecipeConfig, cache_path, load_config
from aqaa.vocoder.commands import check_tokenizer
from aqaa.vocoder.crude import CrudeCodec, fit_crude_codec
from aqaa.vocoder.data import wav_of
from aqaa.vocoder.evaluate import log_mel, mean_mcd, streaming_agreement
from aqaa.vocoder.griffin_lim import griffin_lim
from aqaa.vocoder.vocoder import Vocoder

STEPS = (0, 1, 2, 4, 10)  # 0: the conditioner's prior mel alone, the flow's regression baseline
CLEAN_VOICES = ("flite:kal", "flite:kal16", "flite:rms", "flite:slt", "festival:ked_diphone",
                "festival:cmu_us_slt_arctic_hts")


def crude_codec(config: RecipeConfig, quick: bool, assistant_only: bool = False) -> CrudeCodec:
    """The issue's reference codec (k-means over 4 stacked log-mel frames, 4096 codes), fitted once on 2,000
    training utterances (of every voice, or only the assistant's answers) and kept in the run directory (64 codes
    on 200 utterances when `quick`)."""
    size, utterances = (64, 200) if quick else (4096, 2000)
    path = Path(config.run_dir) / f"crude_codec_{size}{'_assistant' if assistant_only else ''}.safetensors"
    if path.is_file():
        return CrudeCodec.load(path)
    train = FeatureCache(cache_path(config, "train"))
    pool = [i for i, m in enumerate(train.meta) if not assistant_only or m["side"] == "answer"]
    chosen = [pool[i] for i in torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:utterances]]
    codec = fit_crude_codec((train.get("mel", i) for i in chosen), codebook_size=size, iters=4 if quick else 12)
    codec.save(path)
    return codec


def _ratio(wer: float, original_wer: float) -> float | None:
    """The round trip's WER over the original's (the issue's measure); None where the original has no errors."""
    return round(wer / original_wer, 3) if original_wer else None


def _judge(wavs: list[np.ndarray], texts: list[str], desc: str) -> float:
    return round(wer(texts, transcribe_many(tqdm(wavs, desc=f"judge {desc}", unit="utt", leave=False))), 4)


def main(config_path: str | Path, model_dir: str | Path | None = None, tokenizer_dir: str | Path | None = None,
         out: str | Path | None = None, quick: bool = False, overrides: dict[str, Any] | None = None,
         answers: int | None = None, seeds: int | None = None) -> dict[str, Any]:
    """Measure the vocoder on `answers` neutral test answers (default 100, 20 when `quick`), each round trip
    pooled over `seeds` noise draws (default 3, 1 when `quick`), and on a few other voices."""
    config = load_config(config_path, overrides)
    torch.set_num_threads(config.threads)
    model_dir = Path(model_dir or config.out)
    vocoder = Vocoder.from_pretrained(model_dir)
    tokenizer = AudioTokenizer.from_pretrained(tokenizer_dir or config.tokenizer, streams=vocoder.layout.streams)
    check_tokenizer(vocoder, tokenizer)
    test = FeatureCache(cache_path(config, "test"))
    mel_cfg = vocoder.config.mel
    started = time.time()

    limit = answers or (20 if quick else 100)
    answers = [i for i, m in enumerate(test.meta) if m["side"] == "answer" and m["style"] == "neutral"][:limit]
    if not answers:
        raise ValueError(f"no neutral answers in the test cache {cache_path(config, 'test')}")
    texts = [test.meta[i]["text"] for i in answers]
    originals = [wav_of(test, i).numpy() for i in answers]
    codes = [tokenizer.encode(w) for w in tqdm(originals, desc="tokenize", unit="utt", leave=False)]
    seeds = seeds or (1 if quick else 3)
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    report: dict[str, Any] = {"model": str(model_dir), "answers": len(answers), "seeds": seeds, "mcd_definition":
                              "24 mel-cepstra (DCT of 80-band ln mel power / 2, c0 excluded), frame-aligned, over the "
                              "original's frames within 40 dB of its loudest, dB"}
    assistant: dict[str, Any] = {"original_wer": _judge(originals, texts, "originals"),
                                 "phone_error_rate": clean_phone_error_rates(tokenizer, originals, texts)}
    synth_seconds = audio_seconds = 0.0
    for steps in STEPS:
        per_seed = []
        for seed in range(seeds if steps else 1):  # the prior draws no noise
            begun = time.perf_counter()
            wavs = [vocoder.synthesize(c, steps, seed=seed)
                    for c in tqdm(codes, desc=f"{steps} steps, seed {seed}", unit="utt", leave=False)]
            if steps == vocoder.config.flow.steps and seed == 0:
                synth_seconds = time.perf_counter() - begun
                audio_seconds = sum(len(w) for w in wavs) / vocoder.sample_rate
            per_seed.append({"wer": _judge(wavs, texts, f"{steps} steps, seed {seed}"),
                             "mcd": mean_mcd(originals, wavs, mel_cfg)})
        # equal-length transcript sets, so the mean of the per-seed WERs is the pooled WER
        assistant[f"steps_{steps}"] = {"wer": round(float(np.mean([r["wer"] for r in per_seed])), 4),
                                       "mcd": round(float(np.mean([r["mcd"] for r in per_seed])), 3),
                                       "wer_per_seed": [r["wer"] for r in per_seed]}
    mels = [vocoder.mel(c) for c in codes]
    gl = [griffin_lim(m, mel_cfg) for m in tqdm(mels, desc="griffin-lim", unit="utt", leave=False)]
    assistant["griffin_lim_10_steps"] = {"wer": _judge(gl, texts, "griffin-lim"),
                                         "mcd": round(mean_mcd(originals, gl, mel_cfg), 3)}
    true_mels = [test.get("mel", i).float() for i in answers]

    def mel_paths(mels: list[torch.Tensor], desc: str) -> dict[str, Any]:
        """Given log-mels of the answers → neural vocoder and Griffin-Lim: judge WER and MCD of each."""
        neural = [vocoder.vocode(m) for m in mels]
        gl = [griffin_lim(m, mel_cfg) for m in tqdm(mels, desc=f"{desc} griffin-lim", unit="utt", leave=False)]
        return {"neural": {"wer": _judge(neural, texts, f"{desc} neural"),
                           "mcd": round(mean_mcd(originals, neural, mel_cfg), 3)},
                "griffin_lim": {"wer": _judge(gl, texts, f"{desc} griffin-lim"),
                                "mcd": round(mean_mcd(originals, gl, mel_cfg), 3)}}

    assistant["copy_synthesis"] = mel_paths(true_mels, "copy")
    references = {key: crude_codec(config, quick, assistant_only)
                  for key, assistant_only in (("crude_codec", False), ("crude_codec_assistant_only", True))}
    for key, reference in references.items():
        assistant[key] = {"codebook_size": reference.centroids.shape[0],
                          **mel_paths([reference.decode(reference.encode(m)) for m in true_mels], key)}
    crude = references["crude_codec"]  # the clean voices' reference
    report["assistant_voice"] = assistant
    report["offline_rtf"] = round(synth_seconds / audio_seconds, 4) if audio_seconds else None

    def round_trip(wavs: list[np.ndarray], refs: list[str], voice: str, baselines: bool = False,
                   draws: int = 1) -> dict[str, Any]:
        """A voice's recordings vs their round trip (default steps, seeds 0 … draws - 1 pooled): judge WER of
        each and their ratio, MCD; with `baselines`, also the judge's WER through the prior alone (0 steps) and
        through the crude codec."""
        codes = [tokenizer.encode(w) for w in tqdm(wavs, desc=voice, unit="utt", leave=False)]
        original = _judge(wavs, refs, voice)
        per_seed, mcds = [], []
        for seed in range(draws):
            resynth = [vocoder.synthesize(c, seed=seed) for c in codes]
            per_seed.append(_judge(resynth, refs, f"{voice} resynth, seed {seed}"))
            mcds.append(mean_mcd(wavs, resynth, mel_cfg))
        wer_mean = round(float(np.mean(per_seed)), 4)
        result = {"n": len(wavs), "original_wer": original, "resynth_wer": wer_mean,
                  "resynth_wer_per_seed": per_seed, "wer_ratio": _ratio(wer_mean, original),
                  "mcd": round(float(np.mean(mcds)), 3)}
        if baselines:
            result["prior_wer"] = _judge([vocoder.synthesize(c, 0) for c in codes], refs, f"{voice} prior")
            mels = [torch.from_numpy(log_mel(w, mel_cfg)) for w in wavs]
            result["copy_synthesis_wer"] = _judge([vocoder.vocode(m) for m in mels], refs, f"{voice} copy")
            result["crude_codec_wer"] = _judge([vocoder.vocode(crude.decode(crude.encode(m))) for m in mels], refs,
                                               f"{voice} crude")
        return result

    trained_voices = {m["voice"] for m in cache_meta(cache_path(config, "train"))}
    clean_texts = texts[:4] if quick else texts
    clean: dict[str, Any] = {}
    for voice in CLEAN_VOICES:
        wavs = [synthesize(t, voice_from_name(voice), Prosody(), mel_cfg.sample_rate).wav for t in clean_texts]
        clean[voice] = {"in_training": voice in trained_voices,
                        **round_trip(wavs, clean_texts, voice, baselines=True, draws=seeds),
                        "phone_error_rate": clean_phone_error_rates(tokenizer, wavs, clean_texts)}
    report["clean_voices"] = clean

    queries = [i for i, m in enumerate(test.meta) if m["side"] == "query"]
    per_voice = 4 if quick else 12
    voices = [v for v, n in Counter(test.meta[i]["voice"] for i in queries).most_common() if n >= per_voice]
    others: dict[str, Any] = {}
    for voice in voices[: 3 if quick else 6]:
        chosen = [i for i in queries if test.meta[i]["voice"] == voice][:per_voice]
        refs = [test.meta[i]["text"] for i in chosen]
        others[voice] = round_trip([wav_of(test, i).numpy() for i in chosen], refs, voice)
    report["other_voices"] = others

    agreement = [streaming_agreement(vocoder, c) for c in codes[: min(limit, 5 if quick else 20)]]
    report["streaming_vs_offline"] = {k: float(np.max([a[k] for a in agreement])) for k in agreement[0]}
    report["seconds"] = round(time.time() - started, 1)
    out = Path(out or model_dir / "eval_report.json")
    write_json(out, report)

    ten = assistant[f"steps_{vocoder.config.flow.steps}"]
    headline = {
        "original_wer": assistant["original_wer"],
        **{f"resynth_wer_{s}_steps": assistant[f"steps_{s}"]["wer"] for s in STEPS},
        **{f"resynth_mcd_{s}_steps": assistant[f"steps_{s}"]["mcd"] for s in STEPS},
        "resynth_griffin_lim_wer": assistant["griffin_lim_10_steps"]["wer"],
        "resynth_griffin_lim_mcd": assistant["griffin_lim_10_steps"]["mcd"],
        "copy_neural_wer": assistant["copy_synthesis"]["neural"]["wer"],
        "copy_neural_mcd": assistant["copy_synthesis"]["neural"]["mcd"],
        "copy_griffin_lim_wer": assistant["copy_synthesis"]["griffin_lim"]["wer"],
        "copy_griffin_lim_mcd": assistant["copy_synthesis"]["griffin_lim"]["mcd"],
        "crude_codec_neural_wer": assistant["crude_codec"]["neural"]["wer"],
        "crude_codec_griffin_lim_wer": assistant["crude_codec"]["griffin_lim"]["wer"],
        "crude_codec_assistant_only_neural_wer": assistant["crude_codec_assistant_only"]["neural"]["wer"],
        **{f"clean_{v.split(':')[-1]}_{kind}_wer": c[f"{kind}_wer"] for v, c in clean.items()
           for kind in ("original", "resynth")},
        **{f"clean_{v.split(':')[-1]}_copy_synthesis_wer": c["copy_synthesis_wer"] for v, c in clean.items()},
        **{f"clean_{v.split(':')[-1]}_wer_ratio": c["wer_ratio"] for v, c in clean.items()},
        "assistant_code_per": assistant["phone_error_rate"]["codes"],
        **{f"clean_{v.split(':')[-1]}_code_per": c["phone_error_rate"]["codes"] for v, c in clean.items()},
        "other_voices_original_wer": round(float(np.mean([o["original_wer"] for o in others.values()])), 4)
        if others else None,
        "other_voices_resynth_wer": round(float(np.mean([o["resynth_wer"] for o in others.values()])), 4)
        if others else None,
        "streaming_generated_mel_l1": report["streaming_vs_offline"]["generated_mel_l1"],
        "offline_rtf": report["offline_rtf"],
        "wer_ratio": _ratio(ten["wer"], assistant["original_wer"]),
    }
    print(f"report: {out}")
    for name, value in headline.items():
        print(f"{name}: {value}")
    return report
