"""The speech LM's backbone: a Hugging Face `LlamaForCausalLM` over the extended vocabulary, built from a small
config here or brought as a local checkpoint whose embeddings are resized to the speech vocabulary.

The paper trains the new embedding rows and the output head at 5× the body's learning rate; `param_groups`
returns the optimizer groups that do so (`embedding_lr_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from aqaa.vocab import Vocabulary

LM_CONFIG_FILE = "aqaa_lm.json"  # beside an exported model: the layout it speaks and the audio format it reads


@dataclass
class LMConfig:
    """A Llama built here (`backbone: null`) or a local Hugging Face causal-LM checkpoint to extend."""

    hidden_size: int = 256
    layers: int = 6
    heads: int = 4
    kv_heads: int = 4
    ffn: int = 768
    max_len: int = 2048  # positions the model is built for (RoPE needs no table, but generation checks it)
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    init_std: float = 0.02
    dropout: float = 0.0
    backbone: str | None = None  # directory of a pretrained causal LM; the sizes above are then ignored
    embedding_lr_scale: float = 5.0  # learning-rate multiple of the embeddings and the output head


def build_model(config: LMConfig, vocab: Vocabulary, seed: int = 0) -> PreTrainedModel:
    """A fresh Llama whose vocabulary is exactly `vocab` (or the brought backbone, resized to it)."""
    if config.backbone is not None:
        return load_backbone(config.backbone, vocab)
    if config.hidden_size % config.heads or config.heads % config.kv_heads:
        raise ValueError(f"hidden_size {config.hidden_size} must divide into {config.heads} heads, and heads into "
                         f"{config.kv_heads} key/value heads")
    hf = LlamaConfig(vocab_size=vocab.size, hidden_size=config.hidden_size, intermediate_size=config.ffn,
                     num_hidden_layers=config.layers, num_attention_heads=config.heads,
                     num_key_value_heads=config.kv_heads, max_position_embeddings=config.max_len,
                     rope_theta=config.rope_theta, tie_word_embeddings=config.tie_embeddings,
                     initializer_range=config.init_std, attention_dropout=config.dropout,
                     bos_token_id=vocab.bot, eos_token_id=vocab.eot, pad_token_id=vocab.pad)
    torch.manual_seed(seed)
    return LlamaForCausalLM(hf)


def load_backbone(directory: str | Path, vocab: Vocabulary) -> PreTrainedModel:
    """Bring your own checkpoint: load it (local files only), then grow its embeddings and head to `vocab.size`.
    Its own tokenizer must be the text part of `vocab` (`Vocabulary.from_pretrained_text`), so its text rows keep
    their meaning; the audio and special rows are new and start from the mean of the old rows."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"backbone {directory}: no config.json here (a Hugging Face model directory is "
                                "needed; nothing is downloaded)")
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
    old = model.get_input_embeddings().weight.shape[0]
    if old > vocab.text_size:
        # The checkpoint's rows beyond the tokenizer's own ids (padding to a multiple) would collide with ours.
        model.resize_token_embeddings(vocab.text_size)
        old = vocab.text_size
    if old < vocab.text_size:
        raise ValueError(f"backbone {directory} has {old} embedding rows but its tokenizer has {vocab.text_size} "
                         "ids; was the vocabulary built from this backbone's tokenizer?")
    model.resize_token_embeddings(vocab.size, mean_resizing=True)
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = vocab.bot, vocab.eot, vocab.pad
    return model


def param_groups(model: PreTrainedModel, lr: float, weight_decay: float,
                 embedding_lr_scale: float) -> list[dict[str, Any]]:
    """AdamW groups: embeddings + output head at `embedding_lr_scale` × lr; norms and biases without decay.
    Each group carries `lr_scale`, which the training loop multiplies into its schedule."""
    embed = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    groups: dict[str, list[torch.nn.Parameter]] = {"embedding": [], "decay": [], "no_decay": []}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in embed:
            groups["embedding"].append(p)
        elif p.ndim < 2:
            groups["no_decay"].append(p)
        else:
            groups["decay"].append(p)
    spec = {"embedding": (embedding_lr_scale, weight_decay), "decay": (1.0, weight_decay), "no_decay": (1.0, 0.0)}
    return [{"params": params, "lr": lr * spec[name][0], "lr_scale": spec[name][0], "weight_decay": spec[name][1],
             "name": name} for name, params in groups.items() if params]


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameters in total, in the embedding/head tables, and in the transformer body."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    tables = {id(model.get_input_embeddings().weight): model.get_input_embeddings().weight.numel(),
              id(model.get_output_embeddings().weight): model.get_output_embeddings().weight.numel()}
    return {"total": total, "embedding": sum(tables.values()), "body": total - sum(tables.values())}
