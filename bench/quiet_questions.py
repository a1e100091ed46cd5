"""What a recording's level does to the shipped system, and what lifting a too-quiet question gives back.

The corpus's questions peak between -21 and 0 dBFS; a real recording may peak far lower. For the first question
of `--n` validation conversations spoken in flite voices, the system's answer text (its sampling settings, seed
0; no vocoding) at the question's own level, and played at each `--levels` peak as is (lifting switched off)
and, where the tokenizer would lift it, lifted (the default, `LevelConfig`): the share of answers whose text
equals the reference (case and punctuation aside) and the mean share of the reference's content words the answer
says. Also the linguistic encoder's phone error rate on those conversations' answers (the assistant voice) at
the same levels.
Needs the corpus (`aqaa data build configs/data/default.yaml`).
Usage: python bench/quiet_questions.py [--system models] [--corpus corpora/default] [--n 40]
             [--levels -18 -24 -30 -40]
"""

import argparse
import dataclasses
import glob
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes
from aqaa.codec.evaluate import clean_phone_error_rates
from aqaa.eval.keys import content_words
from aqaa.pipeline import load_spoken_model
from aqaa.recipes.train_lm import _same_text


def questions(corpus: str, n: int) -> list[dict]:
    files = sorted(glob.glob(str(Path(corpus) / "data" / "validation" / "*.parquet")))
    if not files:
        raise SystemExit(f"no validation shards under {corpus}/data/validation: build the corpus first")
    rows = []
    for f in files:
        rows += [r for r in pq.read_table(f).to_pylist() if r["turn"] == 0 and r["query_voice"].startswith("flite")]
        if len(rows) >= n:
            return rows[:n]
    return rows


def at_peak(wav: np.ndarray, dbfs: float) -> np.ndarray:
    return (wav * (10 ** (dbfs / 20) / np.abs(wav).max())).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--system", default="models")
    p.add_argument("--corpus", default="corpora/default")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--levels", type=float, nargs="+", default=[-18.0, -24.0, -30.0, -40.0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    system = load_spoken_model(args.system)
    system.generator.sampling = dataclasses.replace(system.config.sampling, seed=0)  # the same draw each time
    level = system.tokenizer.config.level
    lift_below = level.below_dbfs
    rows = questions(args.corpus, args.n)
    # a level the tokenizer would not lift has one condition, "as is"
    conditions = [("own", None, True)] + [(f"{'minus' if d < 0 else 'plus'}{abs(d):g}_{mode}", d, mode == "lifted")
                                          for d in args.levels
                                          for mode in (("as_is", "lifted") if d < lift_below else ("as_is",))]
    exact = {name: 0 for name, _, _ in conditions}
    recall = {name: 0.0 for name, _, _ in conditions}
    started = time.perf_counter()
    with torch.inference_mode():
        for row in tqdm(rows, desc="questions", unit="q"):
            wav, sr = decode_audio_bytes(row["query_audio"]["bytes"])
            reference = set(content_words(row["answer_text"]))
            for name, dbfs, lifted in conditions:
                level.below_dbfs = lift_below if lifted else -np.inf
                prompt = system.prompt(wav if dbfs is None else at_peak(wav, dbfs), sr)
                text = "".join(e.text for e in system.generator.generate(prompt, predict_style=True)
                               if e.kind == "text").strip()
                exact[name] += _same_text(text, row["answer_text"])
                recall[name] += len(reference & set(content_words(text))) / max(1, len(reference))
        level.below_dbfs = lift_below
        answers = [decode_audio_bytes(r["answer_audio"]["bytes"]) for r in rows]
        texts = [r["answer_text"] for r in rows]
        per = {"own": clean_phone_error_rates(system.tokenizer, [w for w, _ in answers], texts)["encoder"]}
        for name, dbfs, lifted in conditions[1:]:
            wavs = [at_peak(w, dbfs) for w, _ in answers]
            if lifted:
                wavs = [system.tokenizer.lift_quiet(w)[0] for w in wavs]
            per[name] = clean_phone_error_rates(system.tokenizer, wavs, texts)["encoder"]
    print(f"system: {args.system}; {len(rows)} validation questions in flite voices; lifted below {lift_below} "
          f"dBFS to {level.to_dbfs} dBFS; {time.perf_counter() - started:.0f} s")
    for name, _, _ in conditions:
        print(f"{name}_answer_text_exact: {exact[name] / len(rows):.3f}")
        print(f"{name}_content_word_recall: {recall[name] / len(rows):.3f}")
        print(f"{name}_assistant_answers_phone_error_rate: {per[name]:.3f}")


if __name__ == "__main__":
    main()
