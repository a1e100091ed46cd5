"""Recipe: train the dual-codebook audio tokenizer on a corpus.

Stages, each resumable and skipped when already done:
  cache       log-mel, phones, F0/voicing/energy of the corpus splits  → RUN/cache/{split}.safetensors
  linguistic  CTC phone recogniser on 60 ms frames                      → RUN/linguistic/
  kmeans      1024 centroids of its features                            → RUN/linguistic_codebook.safetensors
  voice_cache the corpus's answers spoken in `voices.voices` (optional)  → RUN/cache/voices.safetensors
  voice_tuning the linguistic encoder fine-tuned on them, its features on → RUN/voice_tuning/
              its own training data held in place (so are their codes)
  semantic    25 Hz encoder + VQ, trained to rebuild mel, pitch, energy → RUN/semantic/
  semantic_voice_tuning  its encoder fine-tuned on the voices, codebook  → RUN/semantic_voice_tuning/
              frozen, features and codes of its own data held (optional)
  assemble    the tokenizer (both streams) and its codebook report      → OUT/ (from_pretrained-able)
The linguistic and semantic stages are independent: two processes may run them at once (`--stage`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from aqaa.checkpoint import round_through, save_tensors, storage_dtype, write_json
from aqaa.codec.data import (
    FeatureCache,
    VoiceDataConfig,
    batches,
    build_answer_voices,
    build_cache,
    cache_meta,
    collate,
)
from aqaa.codec.evaluate import alignment_errors, codebook_usage, encode_cache
from aqaa.codec.kmeans import kmeans
from aqaa.codec.linguistic import LinguisticModel
from aqaa.codec.semantic import SemanticModel
from aqaa.codec.tokenizer import AudioTokenizer, TokenizerConfig
from aqaa.configs import from_dict, load_yaml
from aqaa.recipes.stages import run_stages, up_to_date
from aqaa.trainer import TrainConfig, train, trained_weights

ALIGNMENT_VOICES = ("flite:awb", "flite:kal16", "flite:rms", "flite:slt")  # training voices with phone timings


@dataclass
class CacheConfig:
    train_shards: int | None = None  # None: every shard of the split
    validation_shards: int | None = 1
    test_shards: int | None = 2
    max_examples_per_shard: int | None = None
    workers: int = 2


@dataclass
class KMeansConfig:
    frames: int = 300_000
    iters: int = 20


@dataclass
class VoiceTuningConfig:
    """Fine-tune the linguistic encoder on `voices` (the answers re-spoken in other voices; the encoder memorises
    the corpus's few hundred questions per other voice and misnames a quarter or more of the phones of their new
    sentences) while holding its features on its own training data, so the codes that the LM and the vocoder
    learned stay."""

    hold_weight: float = 1.0  # on the relative squared change of the features of the tokenizer's training data
    # On CTC read through the codes (each new-voice feature replaced by its nearest centroid, gradient straight
    # through) plus the commitment to those centroids; with it the CTC head is frozen, so the features must move to
    # the centroids that already mean their phones. 0: off (the release).
    code_weight: float = 0.0
    training: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class SemanticVoiceTuningConfig:
    """Fine-tune the semantic encoder (and its training-only decoder) on batches half the tokenizer's own data,
    half `voices`: its mel reconstruction from the codes was twice as far off on other voices' clean speech as on
    the assistant's, even before quantisation. Off while `training.steps` is 0.

    `codebook: frozen` keeps the codes' meaning (and, with the hold weights, most of the codes the LM and the
    vocoder learned). `codebook: free` lets the codebook follow the new voices too (its EMA updates and dead-code
    replacement): the codes are then new, and the vocoder and the LM must be trained on them again."""

    codebook: str = "frozen"  # frozen | free
    hold_weight: float = 1.0  # on the relative squared change of the features of the tokenizer's training data
    # On the relative squared distance of those features' code vectors from the codes they had: with 4,096
    # codes a small change of the features flips many, so this holds the codes themselves.
    code_hold_weight: float = 0.0
    training: TrainConfig = field(default_factory=lambda: TrainConfig(steps=0))

    def __post_init__(self) -> None:
        if self.codebook not in ("frozen", "free"):
            raise ValueError(f"semantic_voice_tuning.codebook must be 'frozen' or 'free', not {self.codebook!r}")
        if self.codebook == "free" and self.code_hold_weight:
            raise ValueError("semantic_voice_tuning.code_hold_weight holds codes of a codebook that 'free' moves: "
                             "set it to 0 or the codebook to 'frozen'")


@dataclass
class RecipeConfig:
    corpus: str = "corpora/default"
    run_dir: str = "runs/tokenizer/default"
    out: str = "models/tokenizer"
    threads: int = 2
    cache: CacheConfig = field(default_factory=CacheConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    linguistic_training: TrainConfig = field(default_factory=TrainConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    semantic_training: TrainConfig = field(default_factory=TrainConfig)
    voices: VoiceDataConfig = field(default_factory=VoiceDataConfig)
    voice_tuning: VoiceTuningConfig = field(default_factory=VoiceTuningConfig)
    semantic_voice_tuning: SemanticVoiceTuningConfig = field(default_factory=SemanticVoiceTuningConfig)
    validation_utterances: int = 64
    alignment_calibration_texts: int = 40
    save_dtype: str = "float32"  # float16 halves the shipped file; the model is measured as stored


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RecipeConfig:
    data = load_yaml(path, "tokenizer recipe config")
    data.update(overrides or {})
    return from_dict(RecipeConfig, data, str(path))


def _cache_path(config: RecipeConfig, split: str) -> Path:
    return Path(config.run_dir) / "cache" / f"{split}.safetensors"


def stage_cache(config: RecipeConfig) -> None:
    c = config.cache
    for split, shards in (("validation", c.validation_shards), ("test", c.test_shards), ("train", c.train_shards)):
        if not _cache_path(config, split).is_file():
            build_cache(config.corpus, split, _cache_path(config, split), config.tokenizer.linguistic.mel,
                        max_shards=shards, max_examples_per_shard=c.max_examples_per_shard, workers=c.workers)


def _validation(cache: FeatureCache, config: RecipeConfig, frames_per_token: int) -> list[dict[str, torch.Tensor]]:
    n = min(len(cache), config.validation_utterances)
    return [collate(cache, list(range(i, min(n, i + 16))), frames_per_token) for i in range(0, n, 16)]


Losses = dict[str, torch.Tensor]


def _train_stream(config: RecipeConfig, stream: str, loss_of: Callable[[torch.nn.Module, Losses], Losses]) -> None:
    """Train one stream's model (`linguistic` or `semantic`) on the train cache, validating on the validation one."""
    train_cache = FeatureCache(_cache_path(config, "train"))
    model = getattr(AudioTokenizer(config.tokenizer), stream)
    model.encoder.set_normalization(*train_cache.mel_stats())
    k = getattr(config.tokenizer, stream).encoder.frames_per_token
    val = _validation(FeatureCache(_cache_path(config, "validation")), config, k)

    def evaluate() -> dict[str, float]:
        # Called in eval mode: the semantic quantiser neither updates its codebook nor replaces dead codes here.
        sums: dict[str, float] = {}
        for b in val:
            for name, value in loss_of(model, b).items():
                sums[name] = sums.get(name, 0.0) + float(value) / len(val)
        return sums

    t = getattr(config, f"{stream}_training")
    train(model, loss_of, lambda e: batches(train_cache, t.max_frames, t.seed, e),
          lambda ix: collate(train_cache, ix, k), t, config.run_dir, stream, evaluate)


def stage_linguistic(config: RecipeConfig) -> None:
    _train_stream(config, "linguistic", lambda model, b: {
        "loss": model.compute_loss(b["mel"], b["mel_lengths"], b["phones"], b["phone_lengths"])})


def stage_kmeans(config: RecipeConfig) -> None:
    tokenizer = AudioTokenizer(config.tokenizer)
    tokenizer.linguistic.load_state_dict(load_file(str(trained_weights(config.run_dir, "linguistic"))))
    cache = FeatureCache(_cache_path(config, "train"))
    feats = []
    total = 0
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for i in torch.randperm(len(cache), generator=generator).tolist():
            f, _ = tokenizer.linguistic.encoder(cache.get("mel", i).float()[None])
            feats.append(f[0])
            total += f.shape[1]
            if total >= config.kmeans.frames:
                break
    centroids = kmeans(torch.cat(feats), config.tokenizer.linguistic.codebook_size, config.kmeans.iters,
                       progress=True)
    save_tensors(Path(config.run_dir) / "linguistic_codebook.safetensors", {"centroids": centroids})


def stage_voice_cache(config: RecipeConfig) -> None:
    answers = [m["text"] for m in cache_meta(_cache_path(config, "train")) if m["side"] == "answer"]
    build_answer_voices(config.voices, answers, _cache_path(config, "voices"), config.tokenizer.linguistic.mel,
                        config.cache.workers)


def _masked_relative_change(new: torch.Tensor, old: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean squared change of [B, T, D] features over the first `lengths` frames, relative to their mean square."""
    mask = (torch.arange(old.shape[1])[None] < lengths[:, None]).unsqueeze(-1).float()
    return ((new - old) ** 2 * mask).sum() / (old ** 2 * mask).sum().clamp(min=1e-8)


def _stream_to_tune(config: RecipeConfig,
                    stream: str) -> tuple[LinguisticModel | SemanticModel, int, FeatureCache, FeatureCache]:
    """The `stream` model as its training stage left it, its frames per token, the train and voices caches."""
    model = getattr(AudioTokenizer(config.tokenizer), stream)
    model.load_state_dict(load_file(str(trained_weights(config.run_dir, stream))))
    k = getattr(config.tokenizer, stream).encoder.frames_per_token
    return model, k, FeatureCache(_cache_path(config, "train")), FeatureCache(_cache_path(config, "voices"))


VoiceBatch = tuple[list[int], list[int]]  # (own training data, new voices) utterance indices


def _voice_batches(train_cache: FeatureCache, voice_cache: FeatureCache, encoder: torch.nn.Module, k: int,
                   t: TrainConfig, hold: bool = True) -> tuple[Callable[[int], list[VoiceBatch]],
                                                               Callable[[VoiceBatch], dict[str, torch.Tensor]]]:
    """Batches for tuning an encoder on new voices: half of each batch new voices, half the tokenizer's own
    data, with (if `hold`) the features that `encoder`, frozen as it is now, gives the own data, to hold them."""
    reference = copy.deepcopy(encoder).requires_grad_(False) if hold else None

    def epoch_batches(epoch: int) -> list[VoiceBatch]:
        new = batches(voice_cache, t.max_frames // 2, t.seed, epoch)
        own = batches(train_cache, t.max_frames // 2, t.seed, epoch)
        return [(own[i % len(own)], ix) for i, ix in enumerate(new)]

    def make_batch(pair: VoiceBatch) -> dict[str, torch.Tensor]:
        own, new = collate(train_cache, pair[0], k), collate(voice_cache, pair[1], k)
        batch = {**{f"own_{key}": value for key, value in own.items()},
                 **{f"new_{key}": value for key, value in new.items()}}
        if reference is not None:
            with torch.no_grad():
                batch["held"], _ = reference(own["mel"])
        return batch

    return epoch_batches, make_batch


def stage_voice_tuning(config: RecipeConfig) -> None:
    v, t = config.voice_tuning, config.voice_tuning.training
    model, k, train_cache, voice_cache = _stream_to_tune(config, "linguistic")
    if v.code_weight > 0:
        codebook = load_file(str(Path(config.run_dir) / "linguistic_codebook.safetensors"))["centroids"]
        model.ctc_head.requires_grad_(False)
    epoch_batches, make_batch = _voice_batches(train_cache, voice_cache, model.encoder, k, t)

    def loss_of(model: LinguisticModel, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = {s: model.encoder(b[f"{s}_mel"])[0] for s in ("own", "new")}
        ctc = 0.5 * sum(model.ctc_loss(features[s], b[f"{s}_mel_lengths"], b[f"{s}_phones"], b[f"{s}_phone_lengths"])
                        for s in ("own", "new"))
        hold = _masked_relative_change(features["own"], b["held"], b["own_mel_lengths"] // k)
        losses = {"ctc": ctc, "hold": hold}
        loss = ctc + v.hold_weight * hold
        if v.code_weight > 0:
            # Set at every step, not once: a resumed run restores the buffer from its checkpoint, and a run begun
            # with code_weight 0 saved it unfitted.
            model.set_codebook(codebook)
            quantized, losses["commitment"] = model.straight_through(features["new"])
            losses["code_ctc"] = model.ctc_loss(quantized, b["new_mel_lengths"], b["new_phones"], b["new_phone_lengths"])
            loss = loss + v.code_weight * (losses["code_ctc"] + losses["commitment"])
        return {"loss": loss, **losses}

    val = _validation(FeatureCache(_cache_path(config, "validation")), config, k)

    def evaluate() -> dict[str, float]:
        return {"ctc": sum(float(model.compute_loss(b["mel"], b["mel_lengths"], b["phones"], b["phone_lengths"]))
                           for b in val) / len(val)}

    train(model, loss_of, epoch_batches, make_batch, t, config.run_dir, "voice_tuning", evaluate)


def _linguistic_weights(config: RecipeConfig) -> Path:
    return trained_weights(config.run_dir, "voice_tuning" if config.voices.voices else "linguistic")


SEMANTIC_KEYS = ("mel", "mel_lengths", "log_f0", "voiced", "log_energy")


def stage_semantic(config: RecipeConfig) -> None:
    _train_stream(config, "semantic", lambda model, b: model.compute_loss(*(b[key] for key in SEMANTIC_KEYS)))


def _semantic_tuning_on(config: RecipeConfig) -> bool:
    return bool(config.voices.voices) and config.semantic_voice_tuning.training.steps > 0


def stage_semantic_voice_tuning(config: RecipeConfig) -> None:
    v, t = config.semantic_voice_tuning, config.semantic_voice_tuning.training
    model, k, train_cache, voice_cache = _stream_to_tune(config, "semantic")
    frozen = v.codebook == "frozen"
    if frozen:
        model.vq.requires_grad_(False)
        model.to_code.requires_grad_(False)  # with the codebook frozen, only the encoder moves the codes
    holding = v.hold_weight > 0 or v.code_hold_weight > 0  # else no held features to compute (a free codebook)
    epoch_batches, make_batch = _voice_batches(train_cache, voice_cache, model.encoder, k, t, hold=holding)

    def loss_of(model: SemanticModel, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        own_features, _ = model.encoder(b["own_mel"])
        lengths = b["own_mel_lengths"] // k
        own = model.compute_loss(*(b[f"own_{key}"] for key in SEMANTIC_KEYS), features=own_features,
                                 freeze_codebook=frozen)
        new = model.compute_loss(*(b[f"new_{key}"] for key in SEMANTIC_KEYS), freeze_codebook=frozen)
        hold = code_hold = own_features.new_zeros(())
        if holding:
            with torch.no_grad():  # the code vectors the held features had
                held_codes = model.codebook()[model.quantize(b["held"])]
            hold = _masked_relative_change(own_features, b["held"], lengths)
            code_hold = _masked_relative_change(model.to_code(own_features), held_codes, lengths)
        loss = 0.5 * (own["loss"] + new["loss"]) + v.hold_weight * hold + v.code_hold_weight * code_hold
        return {"loss": loss, "own_mel": own["mel"].detach(), "new_mel": new["mel"].detach(), "hold": hold,
                "code_hold": code_hold}

    val = _validation(FeatureCache(_cache_path(config, "validation")), config, k)

    def evaluate() -> dict[str, float]:
        return {"mel": sum(float(model.compute_loss(*(b[key] for key in SEMANTIC_KEYS))["mel"])
                           for b in val) / len(val)}

    train(model, loss_of, epoch_batches, make_batch, t, config.run_dir, "semantic_voice_tuning", evaluate)


def _semantic_weights(config: RecipeConfig) -> Path:
    return trained_weights(config.run_dir, "semantic_voice_tuning" if _semantic_tuning_on(config) else "semantic")


def stage_assemble(config: RecipeConfig) -> None:
    tokenizer = AudioTokenizer(config.tokenizer)
    run = Path(config.run_dir)
    tokenizer.linguistic.load_state_dict(load_file(str(_linguistic_weights(config))))
    tokenizer.linguistic.set_codebook(load_file(str(run / "linguistic_codebook.safetensors"))["centroids"])
    tokenizer.semantic.load_state_dict(load_file(str(_semantic_weights(config))))
    dtype = storage_dtype(config.save_dtype)
    round_through(tokenizer.state_dict(), dtype)  # what follows measures the model as it will be stored
    train_cache = FeatureCache(_cache_path(config, "train"))
    # The causal encoder emits phones late; measure by how much on training sentences in flite's voices.
    texts = [m["text"] for m in train_cache.meta if m["side"] == "answer"][: config.alignment_calibration_texts]
    if texts:
        timing = alignment_errors(tokenizer, texts, list(ALIGNMENT_VOICES), delay_ms=0.0)
        tokenizer.linguistic.config.alignment_delay_ms = timing["median_signed_phone_start_error_ms"] or 0.0
    report = codebook_usage(encode_cache(tokenizer, train_cache, desc="codebook use"), tokenizer)
    tokenizer.save(config.out, dtype)
    write_json(Path(config.out) / "codebook_report.json", report)
    print(f"alignment delay: {tokenizer.linguistic.config.alignment_delay_ms} ms")
    for name, r in report.items():
        print(f"{name}: {r['used']}/{r['codebook_size']} codes used ({100 * r['used_fraction']:.1f}%), "
              f"perplexity {r['perplexity']}")


def stage_done(config: RecipeConfig, stage: str) -> bool:
    run = Path(config.run_dir)
    if stage == "cache":
        return all(_cache_path(config, s).is_file() for s in ("train", "validation", "test"))
    if stage in ("voice_cache", "voice_tuning") and not config.voices.voices:
        return True
    if stage == "voice_cache":
        return _cache_path(config, "voices").is_file()
    if stage == "semantic_voice_tuning" and not _semantic_tuning_on(config):
        return True
    if stage in ("linguistic", "semantic", "voice_tuning", "semantic_voice_tuning"):
        training = (getattr(config, stage).training if stage.endswith("voice_tuning")
                    else getattr(config, f"{stage}_training"))
        state = run / stage / "state.json"
        return state.is_file() and json.loads(state.read_text())["step"] >= training.steps
    if stage == "kmeans":
        return (run / "linguistic_codebook.safetensors").is_file()
    # assembled from what the run has now (a run that since tuned on more voices must reassemble)
    return up_to_date(Path(config.out) / "model.safetensors", [
        _linguistic_weights(config), run / "linguistic_codebook.safetensors", _semantic_weights(config)])


RUNNERS = {"cache": stage_cache, "linguistic": stage_linguistic, "kmeans": stage_kmeans,
           "voice_cache": stage_voice_cache, "voice_tuning": stage_voice_tuning, "semantic": stage_semantic,
           "semantic_voice_tuning": stage_semantic_voice_tuning, "assemble": stage_assemble}


def main(config_path: str | Path, stages: list[str] | None = None, overrides: dict[str, Any] | None = None) -> None:
    run_stages(load_config(config_path, overrides), RUNNERS, stage_done, stages)
