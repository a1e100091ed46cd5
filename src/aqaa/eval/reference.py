"""Reference systems over a benchmark: the ground-truth answers (the ceiling) and deliberately wrong ones.

`aqaa.reference` recognises each benchmark question by its exact audio and speaks the corpus's own answer (the
assistant voice, in the asked style), or, in mode `wrong`, the answer of another question of the same family
that its key marks wrong. Run through the benchmark, the first shows how much the ASR judge itself loses (a
perfect system's score), the second that wrong answers score low. Neither can answer a question it has not
seen: any other audio is refused with a clear error.

A system directory holds `config.json`: {"kind": "aqaa.reference", "name": ..., "bench": DIR, "mode": ...}.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aqaa.checkpoint import write_json
from aqaa.eval.bench import open_bench
from aqaa.eval.match import tokens
from aqaa.eval.score import Evidence, evaluate
from aqaa.pipeline import SpokenAnswer, SpokenTurn, register_kind

KIND = "aqaa.reference"
MODES = ("truth", "wrong")


def audio_fingerprint(wav: np.ndarray) -> str:
    """A hash of the waveform as 16-bit PCM: equal for the same decoded benchmark audio."""
    pcm = (np.clip(np.asarray(wav, np.float32), -1, 1) * 32767).round().astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()


def _is_wrong_for(key: dict[str, Any], turn: dict[str, Any], other: dict[str, Any]) -> bool:
    """Would `other`'s answer fail `turn`'s key? Judged on the answer text (no audio needed), plus the notes and
    the style, which the text does not carry."""
    if other["answer_text"] == turn["answer_text"]:
        return False
    if key["fact"]["type"] == "melody":
        return other["answer_notes"] != turn["answer_notes"]
    if key["skill"] and key["skill"]["type"] == "style" and other["answer_style"] == turn["answer_style"]:
        return False
    text_only = Evidence(tokens(other["answer_text"]), np.zeros(0, np.float32), 16000)
    return evaluate(key["fact"], text_only, {}) < 1.0


def wrong_answers(turns: list[dict[str, Any]]) -> dict[str, str]:
    """turn id -> id of the turn whose answer is given instead: the next turn of the same family (in id order)
    whose answer the key marks wrong; failing that, the next turn of any family."""
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ordered = sorted(turns, key=lambda t: t["id"])
    for t in ordered:
        by_family[t["family"]].append(t)
    mapping = {}
    for t in ordered:
        for pool in (by_family[t["family"]], ordered):
            start = pool.index(t) if t in pool else 0
            rotated = pool[start + 1:] + pool[:start]
            choice = next((o for o in rotated if _is_wrong_for(t["key"], t, o)), None)
            if choice is not None:
                mapping[t["id"]] = choice["id"]
                break
        else:
            raise ValueError(f"no wrong answer found for {t['id']}: the benchmark is too small")
    return mapping


class ReferenceSystem:
    """Answers benchmark questions with benchmark answers (see the module docstring)."""

    def __init__(self, bench_dir: str | Path, mode: str = "truth", name: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"reference mode must be one of {MODES}, not {mode!r}")
        bench = open_bench(bench_dir)
        self.name = name or f"reference-{mode}"
        self.mode = mode
        self.bench_name = bench.name
        turns = bench.manifest["turns"]
        by_id = {t["id"]: t for t in turns}
        answer_of = wrong_answers(turns) if mode == "wrong" else {t["id"]: t["id"] for t in turns}
        answers: dict[str, tuple[np.ndarray, int]] = {}
        queries: dict[str, str] = {}
        for turn_id, query, answer, sr in bench.audio():
            queries[audio_fingerprint(query)] = turn_id
            answers[turn_id] = (answer, sr)
        self._lookup = {fp: (by_id[answer_of[tid]]["answer_text"], *answers[answer_of[tid]])
                        for fp, tid in queries.items()}

    def respond(self, audio: np.ndarray, sample_rate: int, history: Sequence[SpokenTurn] = (),
                system: str | None = None) -> SpokenAnswer:
        start = time.perf_counter()
        found = self._lookup.get(audio_fingerprint(audio))
        if found is None:
            raise ValueError(f"{self.name} only answers the questions of benchmark {self.bench_name!r} "
                             "(this audio is not one of them)")
        text, wav, sr = found
        seconds = time.perf_counter() - start
        return SpokenAnswer(text=text, audio=wav, sample_rate=sr,
                            timings={"first_audio": seconds, "total": seconds})


def save_reference_system(directory: str | Path, bench_dir: str | Path, mode: str = "truth",
                          name: str | None = None) -> Path:
    """Write a reference system directory (it refers to the benchmark by absolute path)."""
    if mode not in MODES:
        raise ValueError(f"reference mode must be one of {MODES}, not {mode!r}")
    open_bench(bench_dir)  # fail now, not at load time, when it is not a benchmark
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", {"kind": KIND, "name": name or f"reference-{mode}",
                                           "bench": str(Path(bench_dir).resolve()), "mode": mode})
    return directory


def _load(directory: Path, config: dict[str, Any]) -> ReferenceSystem:
    bench = Path(config["bench"])
    if not bench.is_absolute():
        bench = directory / bench
    return ReferenceSystem(bench, config.get("mode", "truth"), config.get("name"))


register_kind(KIND, _load)
