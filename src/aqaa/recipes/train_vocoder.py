"""Recipe: train the vocoder (tokens → mel by flow matching, mel → waveform by a Vocos-style network).

Stages, each resumable and skipped when already done:
  cache     waveform + log-mel of the corpus splits               → RUN/cache/{split}.safetensors
  voice_cache the train answers spoken in `voices.voices` (optional) → RUN/cache/voices.safetensors
  mel2wav   mel → waveform network on random crops (no tokens)      → RUN/mel2wav/
  codes     the frozen tokenizer's codes of the cached audio        → RUN/cache/{split}_codes.safetensors
  flow      token → mel flow matching on (codes, mel) pairs         → RUN/flow/ (train + voices)
  assemble  the vocoder (both models + the token layout)            → OUT/ (from_pretrained-able)
cache, voice_cache and mel2wav need no tokenizer, so they can run before one exists
(`--stage cache --stage voice_cache --stage mel2wav`).

Training audio is both sides of the corpus: the answers (one assistant voice, the voice the LM speaks in) and
the questions (every flite and espeak-ng voice, with noise and rooms), so that the learned path also renders
voices and recordings it was not trained on (the test split holds out voices).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from aqaa.checkpoint import round_through, state_fingerprint, storage_dtype
from aqaa.codec.data import (
    CacheUnion,
    FeatureCache,
    VoiceDataConfig,
    batches,
    build_answer_voices,
    cache_meta,
)
from aqaa.codec.mel import MelConfig
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.configs import from_dict, load_yaml, to_dict
from aqaa.recipes.stages import run_stages, up_to_date
from aqaa.trainer import TrainConfig, batch_to, train, trained_weights
from aqaa.vocoder.data import (
    audio_features,
    build_audio_cache,
    build_codes_cache,
    crop,
    flow_batch,
    segments,
    silence_level,
)
from aqaa.vocoder.discriminator import Discriminator, DiscriminatorConfig, adversarial_losses
from aqaa.vocoder.flow import FlowConfig, TokenToMel
from aqaa.vocoder.layout import TokenLayout
from aqaa.vocoder.losses import Mel2WavLossConfig, ReconstructionLoss
from aqaa.vocoder.mel2wav import Mel2WavConfig, MelToWave
from aqaa.vocoder.vocoder import Vocoder, VocoderConfig

SPLITS = ("train", "validation", "test")


@dataclass
class CacheConfig:
    train_shards: int | None = None  # None: every shard of the split
    validation_shards: int | None = 1
    test_shards: int | None = 2
    max_examples_per_shard: int | None = None
    sides: list[str] = field(default_factory=lambda: ["answer", "query"])
    workers: int = 2


@dataclass
class CropConfig:
    frames: int = 128  # frames of each crop that the loss sees
    batch: int = 16  # crops per batch
    left: int = 16  # frames of history before each crop (its first outputs lack context; not in the loss)


@dataclass
class RecipeConfig:
    corpus: str = "corpora/default"
    tokenizer: str = "models/tokenizer"
    streams: str | None = None  # None: the tokenizer's layout
    run_dir: str = "runs/vocoder/default"
    out: str = "models/vocoder"
    threads: int = 2
    cache: CacheConfig = field(default_factory=CacheConfig)
    voices: VoiceDataConfig = field(default_factory=VoiceDataConfig)  # more flow training data in other voices
    mel: MelConfig = field(default_factory=MelConfig)
    mel2wav: Mel2WavConfig = field(default_factory=Mel2WavConfig)
    mel2wav_loss: Mel2WavLossConfig = field(default_factory=Mel2WavLossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    crops: CropConfig = field(default_factory=CropConfig)
    mel2wav_training: TrainConfig = field(default_factory=TrainConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    flow_training: TrainConfig = field(default_factory=TrainConfig)
    # A trained vocoder (directory) whose flow the flow stage starts from: a fine-tune onto a changed tokenizer's
    # codes instead of training from scratch. None: start from scratch.
    flow_init: str | None = None
    validation_utterances: int = 32
    save_dtype: str = "float32"  # float16 halves the shipped file (the evaluation then measures it as stored)
    flow_device: str = "cpu"  # where the flow stage trains: "cuda" on a GPU machine (the data stays in memory)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RecipeConfig:
    data = load_yaml(path, "vocoder recipe config")
    data.update(overrides or {})
    return from_dict(RecipeConfig, data, str(path))


def cache_path(config: RecipeConfig, split: str, codes: bool = False) -> Path:
    return Path(config.run_dir) / "cache" / (f"{split}_codes.safetensors" if codes else f"{split}.safetensors")


def stage_cache(config: RecipeConfig) -> None:
    c = config.cache
    for split, shards in (("validation", c.validation_shards), ("test", c.test_shards), ("train", c.train_shards)):
        if not cache_path(config, split).is_file():
            build_audio_cache(config.corpus, split, cache_path(config, split), config.mel, tuple(c.sides),
                              max_shards=shards, max_examples_per_shard=c.max_examples_per_shard, workers=c.workers)


class Mel2WavPair(nn.Module):
    """The mel → waveform network and, with adversarial training, its critic: one module for the trainer."""

    def __init__(self, generator: MelToWave, discriminator: Discriminator | None) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator


def stage_mel2wav(config: RecipeConfig) -> None:
    train_cache = FeatureCache(cache_path(config, "train"))
    model = MelToWave(config.mel, config.mel2wav)
    model.set_normalization(*train_cache.mel_stats())
    weights = config.mel2wav_loss
    critic = Discriminator(config.discriminator) if weights.adversarial_weight else None
    pair = Mel2WavPair(model, critic)
    loss = ReconstructionLoss(config.mel, weights)
    c = config.crops
    right = config.mel2wav.lookahead_frames + config.mel2wav.n_fft // config.mel.hop  # look-ahead + OLA tail
    hop, silence = config.mel.hop, silence_level(config.mel)
    t = config.mel2wav_training

    def loss_of(pair: Mel2WavPair, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model, critic = pair.generator, pair.discriminator
        predicted, spectrum = model.render(batch["mel"])
        inner, frames = slice(c.left * hop, (c.left + c.frames) * hop), slice(c.left, c.left + c.frames)
        spectra = None
        if weights.phase_weight:
            spectra = (spectrum[:, frames], model.analyse(batch["wav"], spectrum.shape[1])[:, frames])
        losses = loss(predicted[:, inner], batch["wav"][:, inner], spectra)
        if critic is not None:
            gan = adversarial_losses(critic, predicted[:, inner], batch["wav"][:, inner])
            losses["loss"] = losses["loss"] + gan["critic"] + weights.adversarial_weight * (
                gan["adversarial"] + weights.matching_weight * gan["matching"])
            losses.update({k: v.detach() for k, v in gan.items()})
        return losses

    val_cache = FeatureCache(cache_path(config, "validation"))
    val = [crop(val_cache, plan, c.frames, c.left, right, hop, silence)
           for plan in segments(val_cache, c.batch, seed=1, epoch=0, frames=c.frames)[:max(1, config.validation_utterances // c.batch)]]

    def evaluate() -> dict[str, float]:
        sums: dict[str, float] = {}
        for b in val:
            for name, value in loss_of(pair, b).items():
                sums[name] = sums.get(name, 0.0) + float(value) / len(val)
        return sums

    train(pair, loss_of, lambda e: segments(train_cache, c.batch, t.seed, e, c.frames),
          lambda plan: crop(train_cache, plan, c.frames, c.left, right, hop, silence), t, config.run_dir,
          "mel2wav", evaluate)


def stage_voice_cache(config: RecipeConfig) -> None:
    answers = [m["text"] for m in cache_meta(cache_path(config, "train")) if m["side"] == "answer"]
    build_answer_voices(config.voices, answers, cache_path(config, "voices"), config.mel, config.cache.workers,
                        featurize=audio_features)


def _code_splits(config: RecipeConfig) -> tuple[str, ...]:
    return SPLITS + (("voices",) if config.voices.voices else ())


def _tokenizer_layout(config: RecipeConfig) -> tuple[AudioTokenizer, TokenLayout]:
    tokenizer = AudioTokenizer.from_pretrained(config.tokenizer)
    return tokenizer, TokenLayout.from_tokenizer(tokenizer.config, config.streams)


def _stale_code_splits(config: RecipeConfig, tokenizer: AudioTokenizer) -> list[str]:
    """Splits without codes, or with codes of other weights than `tokenizer`'s (a retrained tokenizer)."""
    fingerprint = state_fingerprint(tokenizer.state_dict())
    stale = []
    for split in _code_splits(config):
        info = cache_path(config, split, codes=True).with_suffix(".json")
        if not (cache_path(config, split, codes=True).is_file() and info.is_file()
                and json.loads(info.read_text()).get("tokenizer_sha256") == fingerprint):
            stale.append(split)
    return stale


def stage_codes(config: RecipeConfig) -> None:
    tokenizer, layout = _tokenizer_layout(config)
    VocoderConfig(tokens=layout, mel=config.mel, flow=config.flow, mel2wav=config.mel2wav)  # fails early if unfit
    for split in _stale_code_splits(config, tokenizer):
        build_codes_cache(FeatureCache(cache_path(config, split)), tokenizer, layout,
                          cache_path(config, split, codes=True))


def cached_layout(config: RecipeConfig) -> TokenLayout:
    path = cache_path(config, "train", codes=True).with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"no codes cache at {path}: run the codes stage first (it needs the tokenizer)")
    return from_dict(TokenLayout, json.loads(path.read_text())["layout"], "cached token layout")


def stage_flow(config: RecipeConfig) -> None:
    device = torch.device(config.flow_device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"flow_device is {config.flow_device!r} but this machine has no CUDA device "
                         "(set flow_device: cpu)")
    layout = cached_layout(config)
    splits = ("train", "voices") if config.voices.voices else ("train",)
    audio_caches = [FeatureCache(cache_path(config, s)) for s in splits]
    audio = CacheUnion(audio_caches)
    codes = CacheUnion([FeatureCache(cache_path(config, s, True)) for s in splits])
    model = TokenToMel(layout, config.mel.n_mels, config.flow)
    model.set_normalization(*audio_caches[0].mel_stats())  # the corpus audio's statistics
    if config.flow_init is not None:
        start = Vocoder.from_pretrained(config.flow_init)
        if to_dict(start.layout) != to_dict(layout) or to_dict(start.config.flow) != to_dict(config.flow):
            raise ValueError(f"flow_init {config.flow_init} has another token layout or flow config than this recipe")
        model.load_state_dict(start.flow.state_dict())
    val_audio = FeatureCache(cache_path(config, "validation"))
    val_codes = FeatureCache(cache_path(config, "validation", True))
    n = min(len(val_audio), config.validation_utterances)
    model.to(device)
    val = [batch_to(flow_batch(val_audio, val_codes, layout, list(range(i, min(n, i + 16)))), device)
           for i in range(0, n, 16)]

    def loss_of(model: TokenToMel, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return model.compute_loss(b["linguistic"], b["semantic"], b["frames"], b["mel"])

    def evaluate() -> dict[str, float]:
        sums: dict[str, float] = {}
        with torch.random.fork_rng():  # the same noise and times at every evaluation
            torch.manual_seed(0)
            for b in val:
                for name, value in loss_of(model, b).items():
                    sums[name] = sums.get(name, 0.0) + float(value) / len(val)
        return sums

    t = config.flow_training
    train(model, loss_of, lambda e: batches(audio, t.max_frames, t.seed, e),
          lambda ix: batch_to(flow_batch(audio, codes, layout, ix), device), t, config.run_dir, "flow", evaluate)


def stage_assemble(config: RecipeConfig) -> None:
    codes_info = json.loads(cache_path(config, "train", codes=True).with_suffix(".json").read_text())
    vocoder = Vocoder(VocoderConfig(tokens=cached_layout(config), mel=config.mel, flow=config.flow,
                                    mel2wav=config.mel2wav, tokenizer_sha256=codes_info.get("tokenizer_sha256")))
    vocoder.flow.load_state_dict(load_file(str(trained_weights(config.run_dir, "flow"))))
    trained = load_file(str(trained_weights(config.run_dir, "mel2wav")))  # a Mel2WavPair: keep the generator
    vocoder.mel2wav.load_state_dict({k.removeprefix("generator."): v for k, v in trained.items()
                                     if k.startswith("generator.")})
    dtype = storage_dtype(config.save_dtype)
    round_through(vocoder.state_dict(), dtype)
    vocoder.save(config.out, dtype)
    params = {name: sum(p.numel() for p in part.parameters())
              for name, part in (("conditioner", vocoder.flow.conditioner), ("estimator", vocoder.flow.estimator),
                                 ("mel2wav", vocoder.mel2wav))}
    print(f"wrote {config.out}: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in params.items()) + " parameters")
    print(f"token layout: {to_dict(vocoder.layout)}")


def _trained(config: RecipeConfig, name: str) -> bool:
    state = Path(config.run_dir) / name / "state.json"
    steps = getattr(config, f"{name}_training").steps
    return state.is_file() and json.loads(state.read_text())["step"] >= steps


def stage_done(config: RecipeConfig, stage: str) -> bool:
    if stage == "cache":
        return all(cache_path(config, s).is_file() for s in SPLITS)
    if stage == "voice_cache":
        return not config.voices.voices or cache_path(config, "voices").is_file()
    if stage == "codes":
        return not _stale_code_splits(config, _tokenizer_layout(config)[0])
    if stage in ("mel2wav", "flow"):
        return _trained(config, stage)
    # assembled from both trained models as they are now (a resumed run with more steps must reassemble)
    return up_to_date(Path(config.out) / "model.safetensors",
                      [trained_weights(config.run_dir, s) for s in ("mel2wav", "flow")])


RUNNERS = {"cache": stage_cache, "voice_cache": stage_voice_cache, "mel2wav": stage_mel2wav, "codes": stage_codes,
           "flow": stage_flow, "assemble": stage_assemble}


def main(config_path: str | Path, stages: list[str] | None = None, overrides: dict[str, Any] | None = None) -> None:
    run_stages(load_config(config_path, overrides), RUNNERS, stage_done, stages)
