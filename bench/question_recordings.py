"""What a question recording's level and silences do to the shipped system, and what the system's reading of a
person's turn (`LevelConfig`: lift a too-quiet recording; `TrimConfig`: cut long silences at the ends) gives back.

The corpus's questions peak between -21 and 0 dBFS and keep at most 0.38 s of near-silence before the speech and
0.58 s after it; a real recording may be far quieter and have seconds of silence around the question. For the
first question of `--n` validation conversations spoken in flite voices, the system's answer text (its sampling
settings, seed 0; no vocoding):
- at the question's own level;
- played at each `--levels` peak as is (lifting off) and, where the tokenizer would lift it, lifted (the default);
- with `--silence` seconds of digital silence before it, and after it, as is (trimming off) and trimmed (the
  default).
For each: the share of answers whose text equals the reference (case and punctuation aside) and the mean share of
the reference's content words the answer says. Also the linguistic encoder's phone error rate on those
conversations' answers (the assistant voice) at the same levels.
Needs the corpus (`aqaa data build configs/data/default.yaml`).
Usage: python bench/question_recordings.py [--system models] [--corpus corpora/default] [--n 40]
             [--levels -18 -24 -30 -40] [--silence 2.0]
"""

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from aqaa.audio import decode_audio_bytes
from aqaa.codec.evaluate import clean_phone_error_rates
from aqaa.data.corpus import split_files
from aqaa.eval.keys import content_words
from aqaa.home import system_threads
from aqaa.pipeline import load_spoken_model
from aqaa.recipes.train_lm import _same_text


@dataclasses.dataclass
class Condition:
    name: str
    change: Callable[[np.ndarray, int], np.ndarray]
    lift: bool = True
    trim: bool = True
    level_dbfs: float | None = None  # for the phone error rate of the assistant's answers at this level


def questions(corpus: str, n: int) -> list[dict]:
    rows = []
    for f in split_files(corpus)["validation"]:
        rows += [r for r in pq.read_table(f).to_pylist() if r["turn"] == 0 and r["query_voice"].startswith("flite")]
        if len(rows) >= n:
            return rows[:n]
    return rows


def at_peak(wav: np.ndarray, dbfs: float) -> np.ndarray:
    return (wav * (10 ** (dbfs / 20) / np.abs(wav).max())).astype(np.float32)


def conditions(levels: list[float], lift_below: float, silence: float) -> list[Condition]:
    out = [Condition("own", lambda w, sr: w)]
    for d in levels:
        name = f"{'minus' if d < 0 else 'plus'}{abs(d):g}dbfs"
        out.append(Condition(f"{name}_as_is", lambda w, sr, d=d: at_peak(w, d), lift=False, level_dbfs=d))
        if d < lift_below:  # a level the tokenizer would not lift has one condition
            out.append(Condition(f"{name}_lifted", lambda w, sr, d=d: at_peak(w, d), level_dbfs=d))
    for where in ("before", "after"):
        def pad(w: np.ndarray, sr: int, where: str = where) -> np.ndarray:
            gap = np.zeros(round(silence * sr), dtype=np.float32)
            return np.concatenate([gap, w] if where == "before" else [w, gap])
        out.append(Condition(f"silence_{where}_as_is", pad, trim=False))
        out.append(Condition(f"silence_{where}_trimmed", pad))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--system", default="models")
    p.add_argument("--corpus", default="corpora/default")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--levels", type=float, nargs="+", default=[-18.0, -24.0, -30.0, -40.0])
    p.add_argument("--silence", type=float, default=2.0, help="Seconds of silence added before or after")
    p.add_argument("--threads", type=int, default=system_threads(),
                        help="CPU threads (default: what the shipped system runs with)")
    args = p.parse_args()
    system = load_spoken_model(args.system)
    torch.set_num_threads(args.threads)  # after loading: the system sets its own count
    system.generator.sampling = dataclasses.replace(system.config.sampling, seed=0)  # the same draw each time
    level, trim = system.tokenizer.config.level, system.config.trim
    lift_below = level.below_dbfs
    rows = questions(args.corpus, args.n)
    todo = conditions(args.levels, lift_below, args.silence)
    exact = {c.name: 0 for c in todo}
    recall = {c.name: 0.0 for c in todo}
    started = time.perf_counter()
    with torch.inference_mode():
        for row in tqdm(rows, desc="questions", unit="q"):
            wav, sr = decode_audio_bytes(row["query_audio"]["bytes"])
            reference = set(content_words(row["answer_text"]))
            for c in todo:
                level.below_dbfs, trim.enabled = (lift_below if c.lift else -np.inf), c.trim
                prompt = system.prompt(c.change(wav, sr), sr)
                text = "".join(e.text for e in system.generator.generate(prompt, predict_style=True)
                               if e.kind == "text").strip()
                exact[c.name] += _same_text(text, row["answer_text"])
                recall[c.name] += len(reference & set(content_words(text))) / max(1, len(reference))
        level.below_dbfs, trim.enabled = lift_below, True
        answers = [decode_audio_bytes(r["answer_audio"]["bytes"])[0] for r in rows]
        texts = [r["answer_text"] for r in rows]
        per = {"own": clean_phone_error_rates(system.tokenizer, answers, texts)["encoder"]}
        for c in todo:
            if c.level_dbfs is not None:
                wavs = [at_peak(w, c.level_dbfs) for w in answers]
                if c.lift:
                    wavs = [system.tokenizer.lift_quiet(w)[0] for w in wavs]
                per[c.name] = clean_phone_error_rates(system.tokenizer, wavs, texts)["encoder"]
    print(f"system: {args.system}; {len(rows)} validation questions in flite voices; lifted below {lift_below} "
          f"dBFS to {level.to_dbfs} dBFS; silences cut to {trim.keep_lead_s} s before and {trim.keep_trail_s} s "
          f"after; {torch.get_num_threads()} thread(s); {time.perf_counter() - started:.0f} s")
    for c in todo:
        print(f"{c.name}_answer_text_exact: {exact[c.name] / len(rows):.3f}")
        print(f"{c.name}_content_word_recall: {recall[c.name] / len(rows):.3f}")
        if c.name in per:
            print(f"{c.name}_assistant_answers_phone_error_rate: {per[c.name]:.3f}")


if __name__ == "__main__":
    main()
