"""Answer accuracy of the speech LM with fp32, bf16 and int8 weights: what bench/decode.py's token agreement on
one prompt cannot say. Greedy answers (the shipped system's layout constraints, the model choosing the style) to
the first question of `--n` validation conversations of the LM recipe's token cache; for each weight format:
the share that ends and parses, the share whose text equals the reference answer (case and punctuation aside:
the recipe's `gen_text_exact`), and the share whose answer ids are exactly fp32's. Also each format's decode
speed over those answers.
Needs the recipe's token cache (`aqaa train lm configs/lm/default.yaml --stage vocab --stage tokens` builds it).
Usage: python bench/answers_precision.py [--config configs/lm/default.yaml] [--model models/lm] [--n 40]
"""

import argparse
import time

import torch
from transformers import AutoModelForCausalLM

from aqaa.home import system_threads
from aqaa.recipes.train_lm import answer_scores, greedy_answers, load_config, split_builder
from aqaa.vocab import Vocabulary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/lm/default.yaml")
    p.add_argument("--model", default="models/lm")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--max-new-tokens", type=int, default=600)
    p.add_argument("--threads", type=int, default=system_threads(),
                        help="CPU threads (default: what the shipped system runs with)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    vocab = Vocabulary.load(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    builder = split_builder(config, "validation", vocab)
    results, rates = {}, {}
    for weights in ("fp32", "bf16", "int8"):
        start = time.perf_counter()
        results[weights] = greedy_answers(model, vocab, builder, args.n, args.max_new_tokens, weights)
        tokens = sum(len(a["ids"]) for a in results[weights])
        rates[weights] = tokens / (time.perf_counter() - start)
    n = len(results["fp32"])
    print(f"model: {args.model}; {n} validation questions, greedy, {args.threads} thread(s)")
    for weights, answers in results.items():
        scores = answer_scores(answers)
        same = sum(a["ids"] == b["ids"] for a, b in zip(answers, results["fp32"], strict=True)) / n
        print(f"{weights}_answers_ended: {scores['ended']:.3f}")
        print(f"{weights}_answer_text_exact: {scores['text_exact']:.3f}")
        print(f"{weights}_answers_identical_to_fp32: {same:.3f}")
        print(f"{weights}_answer_tok_s: {rates[weights]:.0f}")


if __name__ == "__main__":
    main()
