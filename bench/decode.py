"""Decode speed of the speech LM, all in one process on the same weights, prompt and greedy settings:

- HF `generate` (the baseline);
- a floor loop that does only the per-token weight matrix-vector products (on a CPU a small model's decoding is
  bound by reading its weights, so no correct fp32 decoder can beat it by much);
- aqaa's decoder (`FastLlama`), fp32, with its C++ step (the default) and with its all-Python step: both must
  give HF's tokens;
- the same with int8 weights (C++ step) and bf16 weights (Python step): fewer bytes per token, slightly different
  logits, so their agreement with fp32 is measured (teacher-forced: the share of positions where they pick fp32's
  token); bench/answers_precision.py measures their answers;
- speculative greedy decoding: a draft (the model's first `--draft-layers` layers, or all of them in int8 when
  0) proposes `--draft` tokens, the fp32 model checks them in one pass; its tokens must equal fp32 greedy's
  (through the Python path, where verification runs).
Batch 1, unconstrained greedy. Model: `--model DIR` (an exported LM, e.g. models/lm) or a randomly initialised
Llama of the given size (speed does not depend on the values; speculative acceptance does).
Usage: python bench/decode.py [--model models/lm] [--layers 6 --hidden 256 --ffn 768 --heads 4 --vocab 7300]
"""

import argparse
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from aqaa.home import system_threads
from aqaa.lm.fast import FastLlama, speculative_greedy


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def greedy(fast, prompt, n):
    fast.reset()
    logits, tokens = fast.forward(prompt), []
    for _ in range(n):
        tokens.append(int(logits.argmax()))
        logits = fast.forward(torch.tensor([tokens[-1]]))
    return tokens


def teacher_forced_agreement(fast, reference, prompt, tokens):
    """Share of positions where `fast` picks the reference's token, both fed the reference's own tokens one step
    at a time (the path decoding takes)."""
    agree = 0
    fast.reset()
    reference.reset()
    ours, ref = fast.forward(prompt), reference.forward(prompt)
    for token in tokens:
        agree += int(ours.argmax()) == int(ref.argmax())
        ours, ref = fast.forward(torch.tensor([token])), reference.forward(torch.tensor([token]))
    return agree / len(tokens)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="exported LM directory (default: random weights)")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--ffn", type=int, default=768)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=7300)
    p.add_argument("--prompt", type=int, default=100)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--draft", type=int, default=4, help="tokens the draft proposes per pass")
    p.add_argument("--draft-layers", type=int, default=2, help="layers of the draft (0: the whole model in int8)")
    p.add_argument("--threads", type=int, default=system_threads(),
                        help="CPU threads (default: what the shipped system runs with)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
        source = args.model
    else:
        config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                             num_hidden_layers=args.layers, num_attention_heads=args.heads,
                             num_key_value_heads=args.heads, max_position_embeddings=4096, tie_word_embeddings=False)
        model = LlamaForCausalLM(config).eval()
        source = "random weights"
    vocab = model.config.vocab_size
    params = sum(p.numel() for p in model.parameters())
    prompt = torch.randint(0, vocab, (1, args.prompt))
    n = args.tokens
    max_len = args.prompt + n + args.draft + 2

    # Unconstrained greedy for exactly n tokens: without an end id HF would stop (or, with min_new_tokens, mask the
    # end id out of its argmax) where a trained model wants to end, and its tokens would differ from a plain argmax.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0

    def hf():
        with torch.inference_mode():
            out = model.generate(prompt, max_new_tokens=n, do_sample=False)
        return out[0, args.prompt:].tolist()

    fast = {w: FastLlama(model, max_len, weights=w) for w in ("fp32", "int8", "bf16")}
    fast["python"] = FastLlama(model, max_len, kernel="python")
    target = FastLlama(model, max_len)
    draft = (FastLlama(model, max_len, layers=args.draft_layers) if args.draft_layers
             else FastLlama(model, max_len, weights="int8"))
    x = model.model.embed_tokens.weight[:1].detach().clone()

    def floor():
        with torch.inference_mode():
            h = x
            for _ in range(n):
                logits = fast["fp32"].weight_floor_step(h)
                h = x + 0 * logits[:, :1]  # depend on the previous step like a real decoder does
        return None

    runs = {"hf": hf, "floor": floor, **{w: (lambda w=w: greedy(fast[w], prompt[0], n)) for w in fast},
            "speculative": lambda: speculative_greedy(target, draft, prompt[0], n, args.draft)}
    for fn in runs.values():  # warm-up
        fn()
    best = {name: float("inf") for name in runs}
    results = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            results[name], t = timed(fn)
            best[name] = min(best[name], t)
    fp32_tokens = results["fp32"]
    if fast["fp32"].kernel != "cpp":
        print("warning: the C++ decode step did not build; aqaa_tok_s is the Python step's")
    spec_tokens, spec_stats = results["speculative"]
    weight_mb = params * 4 / 1e6
    print(f"model: {source}, Llama {params / 1e6:.2f} M parameters fp32 ({weight_mb:.0f} MB), "
          f"{model.config.num_hidden_layers} layers, d={model.config.hidden_size}, vocab {vocab}; prompt "
          f"{args.prompt}, {n} greedy tokens, {args.threads} threads")
    print(f"identical_tokens_hf_vs_aqaa: {results['hf'] == fp32_tokens}")
    print(f"identical_tokens_hf_vs_aqaa_python: {results['hf'] == results['python']}")
    print(f"identical_tokens_speculative: {spec_tokens == results['python']}")
    for w in ("int8", "bf16"):
        print(f"{w}_agreement_teacher_forced: "
              f"{teacher_forced_agreement(fast[w], fast['fp32'], prompt[0], fp32_tokens):.4f}")
    print(f"speculative_acceptance: {spec_stats['acceptance']:.3f}")
    print(f"speculative_tokens_per_pass: {spec_stats['tokens_per_pass']:.2f}")
    rates = {k: n / v for k, v in best.items()}
    print(f"floor_weight_read_gb_s: {weight_mb * rates['floor'] / 1000:.1f}")
    print(f"hf_generate_tok_s: {rates['hf']:.0f}")
    print(f"floor_tok_s: {rates['floor']:.0f}")
    print(f"aqaa_python_tok_s: {rates['python']:.0f}")
    print(f"aqaa_tok_s: {rates['fp32']:.0f}")
    print(f"int8_tok_s: {rates['int8']:.0f}")
    print(f"bf16_tok_s: {rates['bf16']:.0f}")
    print(f"speculative_tok_s: {rates['speculative']:.0f}")
    print(f"int8_speedup_over_fp32: {rates['int8'] / rates['fp32']:.2f}")
    print(f"speculative_speedup_over_fp32: {rates['speculative'] / rates['fp32']:.2f}")
    print(f"fraction_of_floor: {rates['fp32'] / rates['floor']:.2f}")
    print(f"speedup: {rates['fp32'] / rates['hf']:.2f}")


if __name__ == "__main__":
    main()
