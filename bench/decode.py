"""Decode speed of the speech LM: HF `generate` vs a weight-read floor vs aqaa's generator, same process.

All three run the same weights, prompt and greedy settings (fp32, batch 1, unconstrained greedy so HF and ours
must agree token for token). The floor loop does only the per-token weight matrix-vector products; on a CPU a
small model's decoding is bound by reading its weights, so no correct decoder can beat it by much.
Model: a Llama of the given size with random weights (speed does not depend on the values).
Usage: python bench/decode.py [--layers 6 --hidden 256 --ffn 768 --heads 4 --vocab 7300 --tokens 300]
"""

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from aqaa.lm.fast import FastLlama


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--ffn", type=int, default=768)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=7300)
    p.add_argument("--prompt", type=int, default=100)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.heads, max_position_embeddings=4096, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    params = sum(p.numel() for p in model.parameters())
    prompt = torch.randint(0, args.vocab, (1, args.prompt))
    n = args.tokens

    def hf():
        with torch.inference_mode():
            out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return out[0, args.prompt:].tolist()

    fast = FastLlama(model, args.prompt + n + 1)

    def ours():
        fast.reset()
        logits = fast.forward(prompt[0])
        tokens = []
        for _ in range(n):
            token = int(logits.argmax())
            tokens.append(token)
            logits = fast.forward(torch.tensor([token]))
        return tokens

    x = model.model.embed_tokens.weight[:1].detach().clone()

    def floor():
        with torch.inference_mode():
            h = x
            for _ in range(n):
                logits = fast.weight_floor_step(h)
                h = x + 0 * logits[:, :1]  # depend on the previous step like a real decoder does
        return None

    hf(), ours(), floor()  # warm-up
    best = {"hf": float("inf"), "ours": float("inf"), "floor": float("inf")}
    for _ in range(args.repeats):
        hf_tokens, t = timed(hf)
        best["hf"] = min(best["hf"], t)
        our_tokens, t = timed(ours)
        best["ours"] = min(best["ours"], t)
        _, t = timed(floor)
        best["floor"] = min(best["floor"], t)
    identical = hf_tokens == our_tokens
    weight_mb = params * 4 / 1e6
    print(f"model: Llama {params / 1e6:.2f} M parameters fp32 ({weight_mb:.0f} MB), {args.layers} layers, "
          f"d={args.hidden}, vocab {args.vocab}; prompt {args.prompt}, {n} greedy tokens, {args.threads} threads")
    print(f"identical_tokens: {identical}")
    if not identical:
        first = next(i for i, (a, b) in enumerate(zip(hf_tokens, our_tokens, strict=True)) if a != b)
        print(f"first_difference_at: {first}")
    rates = {k: n / v for k, v in best.items()}
    print(f"floor_weight_read_gb_s: {weight_mb * rates['floor'] / 1000:.1f}")
    print(f"hf_generate_tok_s: {rates['hf']:.0f}")
    print(f"floor_tok_s: {rates['floor']:.0f}")
    print(f"aqaa_tok_s: {rates['ours']:.0f}")
    print(f"fraction_of_floor: {rates['ours'] / rates['floor']:.2f}")
    print(f"speedup: {rates['ours'] / rates['hf']:.2f}")


if __name__ == "__main__":
    main()
