"""Recipe: train the speech LM on a corpus, with a trained audio tokenizer.

Stages, each resumable and skipped when already done:
  vocab   byte-level BPE on the corpus text + audio ids + specials         → RUN/vocab/
  tokens  the corpus's question and answer audio as codes (frozen tokenizer) → CACHE/{split}.safetensors
  train   packed task-mix sequences, AdamW + warm-up/cosine, accumulation   → RUN/lm/ (resumable checkpoints)
  export  Hugging Face model + tokenizer files + the layout it speaks       → OUT/
The token cache depends only on the corpus and the tokenizer, so runs that differ in layout, streams, tasks or
model size (the ablations) share it (`token_cache`).

Runs on one CPU as it is, or on several GPUs with `accelerate launch -m aqaa.recipes.train_lm CONFIG`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from torch.nn import functional as F

from aqaa.checkpoint import write_json
from aqaa.configs import from_dict, load_yaml, to_dict
from aqaa.data.corpus import split_files
from aqaa.lm.data import TokenCache, build_token_cache
from aqaa.lm.layouts import parse_answer
from aqaa.lm.model import LM_CONFIG_FILE, LMConfig, build_model, count_parameters, param_groups
from aqaa.lm.packing import IGNORE, bucket, collate_packed, pack
from aqaa.lm.tasks import SYSTEM_PROMPTS, TASKS, AudioFormat, SequenceBuilder, TrainingSequence
from aqaa.recipes.stages import run_stages, up_to_date
from aqaa.trainer import TrainConfig, batch_to, train, trained_weights
from aqaa.vocab import TOKEN_KINDS, Vocabulary, default_styles, train_text_tokenizer


@dataclass
class VocabConfig:
    text_vocab_size: int = 2048
    min_frequency: int = 2
    pretrained_text_tokenizer: str | None = None  # a local HF tokenizer directory (bring your own backbone)


@dataclass
class TokensConfig:
    train_shards: int | None = None  # None: every shard
    validation_shards: int | None = None
    max_examples_per_shard: int | None = None
    workers: int = 2


@dataclass
class BatchConfig:
    packing: bool = True  # pack sequences into rows (block-diagonal mask), or bucket by length (no mask)
    row_len: int = 1024  # tokens per row; longer sequences are dropped (and counted in the log)
    rows: int = 4  # rows per batch: a batch holds at most rows × row_len tokens, padding included


@dataclass
class EvalConfig:
    sequences: int = 96  # validation conversations scored for loss and per-stream perplexity
    generate: int = 12  # validation questions answered greedily (well-formedness, text accuracy)
    max_new_tokens: int = 600  # per generated answer
    tasks: dict[str, float] = field(default_factory=lambda: {"aqaa": 1.0})  # what the validation sequences do


@dataclass
class RecipeConfig:
    corpus: str = "corpora/default"
    tokenizer: str = "models/tokenizer"
    streams: str | None = None  # dual | linguistic | semantic: override the tokenizer's (the codebook ablation)
    token_cache: str = "runs/lm/tokens"
    run_dir: str = "runs/lm/default"
    out: str = "models/lm"
    threads: int = 2
    seed: int = 0
    layout: str = "aligned"
    tasks: dict[str, float] = field(default_factory=lambda: {"aqaa": 1.0})
    vocab: VocabConfig = field(default_factory=VocabConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    model: LMConfig = field(default_factory=LMConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    save_dtype: str = "float32"  # float16 halves the exported file (it loads back into float32)
    # An exported LM (directory) to start from instead of random weights: a fine-tune, e.g. onto a retrained
    # tokenizer's codes. Its vocabulary is kept; its architecture must be `model`. None: train from scratch.
    init: str | None = None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RecipeConfig:
    data = load_yaml(path, "LM recipe config")
    data.update(overrides or {})
    config = from_dict(RecipeConfig, data, str(path))
    unknown = sorted(set(config.tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"{path}: unknown tasks {unknown}; tasks are {list(TASKS)}")
    return config


def _cache_path(config: RecipeConfig, split: str) -> Path:
    return Path(config.token_cache) / f"{split}.safetensors"


def tokenizer_config(config: RecipeConfig) -> Any:
    """The tokenizer's config (with the recipe's `streams`), read without loading its weights."""
    from aqaa.codec.tokenizer import TokenizerConfig

    path = Path(config.tokenizer) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no trained tokenizer in {config.tokenizer} (train one with `aqaa train tokenizer`)")
    data = json.loads(path.read_text())
    data.pop("kind", None)
    if config.streams is not None:
        data["streams"] = config.streams
    return from_dict(TokenizerConfig, data, str(path))


# -- stages ---------------------------------------------------------------------------------------------------
def stage_vocab(config: RecipeConfig) -> None:
    tok = tokenizer_config(config)
    sizes = {"linguistic_size": tok.linguistic.codebook_size, "semantic_size": tok.semantic.codebook_size}
    if config.init is not None:  # a fine-tune keeps the ids its LM learned
        check_init(config)
        vocab = Vocabulary.load(config.init)
        have = {"linguistic_size": vocab.audio.linguistic_size, "semantic_size": vocab.audio.semantic_size}
        if have != sizes:
            raise ValueError(f"init {config.init} has audio codebooks {have}, the tokenizer {config.tokenizer} "
                             f"{sizes}")
    elif config.vocab.pretrained_text_tokenizer:
        vocab = Vocabulary.from_pretrained_text(config.vocab.pretrained_text_tokenizer, **sizes)
    else:
        files = split_files(config.corpus)["train"]
        texts = [*SYSTEM_PROMPTS.values(), *(f"{role}\n" for role in ("system", "human", "assistant"))]
        for path in files:
            table = pq.read_table(path, columns=["query_text", "answer_text"]).to_pydict()
            texts += table["query_text"] + table["answer_text"]
        text_tokenizer = train_text_tokenizer(texts, config.vocab.text_vocab_size, config.vocab.min_frequency)
        vocab = Vocabulary(text_tokenizer, styles=default_styles(), **sizes)
    vocab.save(Path(config.run_dir) / "vocab")
    if config.init is not None:  # recorded now, before an in-place fine-tune exports over the init's own record
        write_json(Path(config.run_dir) / INIT_FILE, {"init": config.init, "steps_before": lineage_steps(config.init)})
    print(f"vocabulary: {vocab.size} ids ({vocab.text_size} text, {vocab.audio.linguistic_size} linguistic, "
          f"{vocab.audio.semantic_size} semantic, {len(vocab.specials)} specials)")


def stage_tokens(config: RecipeConfig) -> None:
    t = config.tokens
    for split, shards in (("validation", t.validation_shards), ("train", t.train_shards)):
        if not _cache_path(config, split).is_file():
            build_token_cache(config.corpus, split, config.tokenizer, _cache_path(config, split), max_shards=shards,
                              max_examples_per_shard=t.max_examples_per_shard, workers=t.workers)


def split_builder(config: RecipeConfig, split: str, vocab: Vocabulary) -> SequenceBuilder:
    """Training sequences of one split of the recipe's token cache."""
    return SequenceBuilder(TokenCache(_cache_path(config, split)), vocab, config.layout,
                           AudioFormat.of_tokenizer(tokenizer_config(config)))


def sequence_losses(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean next-token cross-entropy over the labelled positions, and its share per kind of target token."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                   position_ids=batch["position_ids"]).logits[:, :-1]  # [B, L-1, V]
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE
    losses = F.cross_entropy(logits[mask], targets[mask], reduction="none")
    out = {"loss": losses.mean()}
    kinds = batch["kinds"][:, 1:][mask]
    for code, name in enumerate(TOKEN_KINDS):
        chosen = kinds == code
        if chosen.any():
            out[f"loss_{name}"] = losses[chosen].detach().mean()
    return out


def stream_perplexity(model: torch.nn.Module, vocab: Vocabulary, batches: list[dict[str, torch.Tensor]]
                      ) -> dict[str, float]:
    """Perplexity of the answers' linguistic and semantic tokens, each normalised over its own stream's ids (the
    generator knows which stream comes next, so this is the uncertainty it faces). Also the text tokens'."""
    sums = {kind: [0.0, 0] for kind in ("text", "linguistic", "semantic")}
    for batch in batches:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                       position_ids=batch["position_ids"]).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        kinds = batch["kinds"][:, 1:]
        for kind in sums:
            r = vocab.kind_range(kind)
            mask = (targets != IGNORE) & (kinds == TOKEN_KINDS.index(kind))
            if mask.any():
                nll = F.cross_entropy(logits[mask][:, r.start:r.stop], targets[mask] - r.start, reduction="sum")
                sums[kind][0] += float(nll)
                sums[kind][1] += int(mask.sum())
    return {f"ppl_{k}": round(math.exp(s / n), 3) for k, (s, n) in sums.items() if n}


def _batch(rows: list[list[TrainingSequence]], config: RecipeConfig, vocab: Vocabulary,
           device: torch.device | None = None) -> dict[str, torch.Tensor]:
    batch = collate_packed(rows, config.batch.row_len if config.batch.packing else None, vocab.pad)
    batch["kinds"] = vocab.kind_codes(batch["input_ids"])
    return batch_to(batch, device)


def _rows(sequences: list[TrainingSequence], config: RecipeConfig, seed: int) -> tuple[list[list[list[TrainingSequence]]], int]:
    lengths = [len(s.ids) for s in sequences]
    if not config.batch.packing:
        batches, dropped = bucket(lengths, config.batch.rows * config.batch.row_len, seed)
        return [[[sequences[i]] for i in batch] for batch in batches], dropped
    rows, dropped = pack(lengths, config.batch.row_len, seed)
    packed = [[sequences[i] for i in row] for row in rows]
    per = config.batch.rows
    return [packed[i:i + per] for i in range(0, len(packed), per)], dropped


def greedy_answers(model: torch.nn.Module, vocab: Vocabulary, builder: SequenceBuilder, n: int,
                   max_new_tokens: int = 600, weights: str = "fp32") -> list[dict[str, Any]]:
    """Greedy answers to the first question of `n` of the builder's conversations, each as {"ended": whether it
    ended and parses, "text": its text, "reference": the corpus answer's text, "ids": every answer id}."""
    from aqaa.lm.generate import Generator, SamplingConfig
    from aqaa.lm.layouts import Turn, build_prompt

    gen = Generator(model, vocab, builder.layout, SamplingConfig(greedy=True, max_new_tokens=max_new_tokens),
                    max_len=max_new_tokens + 512, weights=weights)
    answers = []
    for conv in builder.conversation_ids[:n]:
        i = builder.turns(conv)[0]
        prompt = build_prompt(vocab, [Turn("human", audio_ids=builder.audio_ids(i, "query"))], builder.layout,
                              group_seconds=builder.audio.group_seconds)
        events = list(gen.generate(prompt, predict_style=True))
        text = ""
        if not events[-1].truncated:
            text = vocab.decode_text(parse_answer(vocab, gen.last_answer_ids, builder.layout)[0])
        answers.append({"ended": not events[-1].truncated, "text": text,
                        "reference": builder.cache.examples[i]["answer_text"], "ids": list(gen.last_answer_ids)})
    return answers


def generation_check(model: torch.nn.Module, vocab: Vocabulary, builder: SequenceBuilder, n: int,
                     max_new_tokens: int = 600) -> dict[str, float]:
    """Greedy answers to the first question of `n` validation conversations: the share that ends properly and
    parses, and the share whose text equals the reference answer (case and punctuation aside)."""
    if n <= 0:
        return {}
    scores = answer_scores(greedy_answers(model, vocab, builder, n, max_new_tokens))
    return {f"gen_{name}": round(value, 3) for name, value in scores.items()}


def answer_scores(answers: list[dict[str, Any]]) -> dict[str, float]:
    """Of `greedy_answers`: the share that ended and parsed, and the share whose text equals the reference."""
    exact = sum(a["ended"] and _same_text(a["text"], a["reference"]) for a in answers)
    return {"ended": sum(a["ended"] for a in answers) / len(answers), "text_exact": exact / len(answers)}


def _same_text(a: str, b: str) -> bool:
    """Equal apart from case, punctuation and spacing."""
    def normal(text: str) -> str:
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())
    return normal(a) == normal(b)


INIT_FILE = "init.json"  # in a fine-tune's run_dir: the LM it started from and the training steps behind that
# The LMConfig fields that shape the network (the rest: initialisation, dropout, learning-rate scale).
ARCHITECTURE = ("backbone", "hidden_size", "layers", "heads", "kv_heads", "ffn", "max_len", "rope_theta",
                "tie_embeddings")


def check_init(config: RecipeConfig) -> None:
    """Refuse an `init` that is not an exported LM of this recipe's architecture (before any stage runs long)."""
    exported = Path(config.init) / LM_CONFIG_FILE
    if not exported.is_file():
        raise FileNotFoundError(f"init {config.init}: no exported LM there (no {LM_CONFIG_FILE})")
    trained, wanted = json.loads(exported.read_text())["recipe"]["model"], to_dict(config.model)
    differ = [k for k in ARCHITECTURE if trained.get(k) != wanted[k]]
    if differ:
        raise ValueError(f"init {config.init} has another architecture than this recipe's model: {differ} are "
                         f"{[trained.get(k) for k in differ]} there, {[wanted[k] for k in differ]} here")


def lineage_steps(directory: str | Path) -> int:
    """Training steps behind an exported LM: its own run's and, for a fine-tune, those of every LM before it."""
    exported = json.loads((Path(directory) / LM_CONFIG_FILE).read_text())
    return exported.get("total_trained_steps", exported["trained_steps"])


def initial_weights(config: RecipeConfig) -> dict[str, torch.Tensor]:
    """The float32 weights of the exported LM `config.init`."""
    from transformers import AutoModelForCausalLM

    check_init(config)
    return AutoModelForCausalLM.from_pretrained(config.init, dtype=torch.float32).state_dict()


def stage_train(config: RecipeConfig) -> None:
    from accelerate import Accelerator

    accelerator = Accelerator()
    vocab = Vocabulary.load(Path(config.run_dir) / "vocab")
    train_builder = split_builder(config, "train", vocab)
    val_builder = split_builder(config, "validation", vocab)
    model = build_model(config.model, vocab, config.seed)
    if config.init is not None and not (Path(config.run_dir) / "lm" / "state.json").is_file():
        model.load_state_dict(initial_weights(config))  # (a resumed run starts from its own checkpoint instead)
    counts = count_parameters(model)
    if accelerator.is_main_process:
        print(f"model: {counts['total'] / 1e6:.2f} M parameters ({counts['body'] / 1e6:.2f} M body, "
              f"{counts['embedding'] / 1e6:.2f} M embedding + head); layout {train_builder.layout.name}; "
              f"tasks {config.tasks}")
    device = accelerator.device
    val_rows, _ = _rows(val_builder.epoch(config.eval.tasks, config.seed, 0)[: config.eval.sequences], config, 0)
    val_batches = [_batch(rows, config, vocab, device) for rows in val_rows]
    log_path = Path(config.run_dir) / "lm" / "packing.jsonl"

    def epoch_batches(epoch: int) -> list[list[list[TrainingSequence]]]:
        sequences = train_builder.epoch(config.tasks, config.seed, epoch)
        batches, dropped = _rows(sequences, config, config.seed + epoch)
        if accelerator.is_main_process:
            tokens = sum(len(s.ids) for s in sequences)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            padded = sum(len(b) * (config.batch.row_len if config.batch.packing else
                                   max(len(row[0].ids) for row in b)) for b in batches)
            with open(log_path, "a") as log:
                log.write(json.dumps({"epoch": epoch, "sequences": len(sequences), "dropped_too_long": dropped,
                                      "batches": len(batches), "tokens": tokens,
                                      "fill": round(tokens / max(1, padded), 3)}) + "\n")
        # Each process takes its own share; all shares have the same number of batches.
        share = len(batches) // accelerator.num_processes
        return batches[accelerator.process_index * share:(accelerator.process_index + 1) * share]

    def evaluate() -> dict[str, float]:
        # The trainer runs this on the main process alone, so through the bare model: the distributed
        # wrapper's forward may sync buffers with the other processes, which are not evaluating.
        bare = accelerator.unwrap_model(model)
        sums: dict[str, float] = {}
        for batch in val_batches:
            for k, v in sequence_losses(bare, batch).items():
                sums[k] = sums.get(k, 0.0) + float(v) / len(val_batches)
        sums.update(stream_perplexity(bare, vocab, val_batches))
        sums.update(generation_check(bare, vocab, val_builder, config.eval.generate, config.eval.max_new_tokens))
        return sums

    groups = param_groups(model, config.training.lr, config.training.weight_decay, config.model.embedding_lr_scale)
    train(model, sequence_losses, epoch_batches, lambda rows: _batch(rows, config, vocab, device),
          config.training, config.run_dir, "lm", evaluate, param_groups=groups, accelerator=accelerator)


def _steps_before(config: RecipeConfig) -> int:
    """Training steps behind the LM this run started from (0 without `init`)."""
    if config.init is None:
        return 0
    recorded = Path(config.run_dir) / INIT_FILE
    if recorded.is_file():
        return json.loads(recorded.read_text())["steps_before"]
    # A run begun before init.json was recorded: the init's own record tells, unless this run has already
    # exported over it (init and out the same directory), and then that record says what it added.
    exported = json.loads((Path(config.init) / LM_CONFIG_FILE).read_text())
    if exported["recipe"]["run_dir"] == config.run_dir:
        return exported["total_trained_steps"] - exported["trained_steps"]
    return lineage_steps(config.init)


def stage_export(config: RecipeConfig) -> None:
    from safetensors.torch import load_file

    from aqaa.checkpoint import round_through, storage_dtype

    vocab = Vocabulary.load(Path(config.run_dir) / "vocab")
    model = build_model(config.model, vocab, config.seed)
    model.load_state_dict(load_file(str(trained_weights(config.run_dir, "lm"))))
    out = Path(config.out)
    dtype = storage_dtype(config.save_dtype)
    round_through(model.state_dict(), dtype)
    model.to(dtype).save_pretrained(str(out), safe_serialization=True)
    vocab.save(out)
    audio = AudioFormat.of_tokenizer(tokenizer_config(config))
    state = json.loads((Path(config.run_dir) / "lm" / "state.json").read_text())
    before = _steps_before(config)
    write_json(out / LM_CONFIG_FILE, {"kind": "aqaa.speech_lm", "layout": config.layout,
                                      "streams": tokenizer_config(config).streams,
                                      "per_group": list(audio.per_group), "group_seconds": audio.group_seconds,
                                      "tasks": config.tasks, "trained_steps": state["step"],
                                      "total_trained_steps": before + state["step"],
                                      "recipe": to_dict(config)})
    print(f"exported the LM to {out}")


def stage_done(config: RecipeConfig, stage: str) -> bool:
    run = Path(config.run_dir)
    if stage == "vocab":
        return (run / "vocab" / "aqaa_vocab.json").is_file()
    if stage == "tokens":
        return all(_cache_path(config, s).is_file() for s in ("train", "validation"))
    if stage == "train":
        state = run / "lm" / "state.json"
        return state.is_file() and json.loads(state.read_text())["step"] >= config.training.steps
    # exported from the run's weights as they are now (an `init` fine-tune may export over the LM it started from)
    return up_to_date(Path(config.out) / LM_CONFIG_FILE, [trained_weights(config.run_dir, "lm")])


RUNNERS = {"vocab": stage_vocab, "tokens": stage_tokens, "train": stage_train, "export": stage_export}


def main(config_path: str | Path, stages: list[str] | None = None, overrides: dict[str, Any] | None = None) -> None:
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # This process alone, or one of several under `accelerate launch`: the state the trainer's Accelerator then
    # shares. Several processes on CPUs need the flag that Accelerator reads and PartialState does not.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))

    def in_step(stage: str, runner: Callable[[RecipeConfig], None]) -> Callable[[RecipeConfig], None]:
        """Every process trains; one writes the vocabulary, the token cache and the export. All wait for all after
        each stage, so that each decides the next from the same files (the export reads the saved weights)."""
        def run(config: RecipeConfig) -> None:
            if stage == "train" or state.is_main_process:
                runner(config)
            state.wait_for_everyone()
        return run

    run_stages(load_config(config_path, overrides), {name: in_step(name, runner) for name, runner in RUNNERS.items()},
               stage_done, stages)


if __name__ == "__main__":  # accelerate launch -m aqaa.recipes.train_lm CONFIG [STAGE ...]
    main(sys.argv[1], sys.argv[2:] or None)
