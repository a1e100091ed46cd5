"""Run a spoken dialogue system through the benchmark and score it from its speech.

Every turn is asked with the conversation so far as history (the human's earlier questions as audio, the
system's own earlier answers). Each answer is cached in the run directory as it comes: its audio
(`answers/ID.flac`) and then its record (`answers/ID.json`: the system's text, the judge's transcript, timings).
The record is written last and atomically, so an interrupted run continues where it stopped when run again.
Scoring reads only the cache, so a finished run can be rescored without asking the system again.

Run directory:
    run.json        which system and which benchmark (a rerun must match both)
    answers/        per-turn answer audio and records
    report.json     every score, per turn and per dimension;  report.md, radar.png: the same for people
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from aqaa import judge
from aqaa.audio import AudioError, check_waveform, load_audio, save_audio
from aqaa.checkpoint import write_json
from aqaa.data.tasks import DIMENSIONS
from aqaa.eval import styles
from aqaa.eval.bench import GROUPS, Bench
from aqaa.eval.match import tokens
from aqaa.eval.score import Evidence, measure_answer, score_turn
from aqaa.pipeline import SpokenDialogueModel, SpokenTurn

RUN_FORMAT = 1
REPORT_FORMAT = 1


class RunError(RuntimeError):
    """The run directory or the system's answers cannot be used as asked."""


def _json_safe(extra: dict[str, Any]) -> dict[str, Any]:
    safe = {}
    for key, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # arrays, tensors: not part of the record
        safe[key] = value
    return safe


def _prepare(out_dir: Path, model_name: str, model_dir: str | None, bench: Bench) -> None:
    identity = {"format": RUN_FORMAT, "model": model_name, "model_dir": model_dir, "bench": bench.name,
                "bench_version": bench.manifest["version"], "bench_sha256": bench.sha256}
    path = out_dir / "run.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        mismatch = [k for k in ("model", "bench_sha256") if previous.get(k) != identity[k]]
        if mismatch:
            raise RunError(f"{out_dir} holds a run of another {' and '.join(mismatch)} "
                           f"({', '.join(f'{k}={previous.get(k)!r}' for k in mismatch)}); "
                           "choose another --out, or delete it to start again")
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RunError(f"{out_dir} is not empty and holds no benchmark run; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, identity | {"started": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _answer_turn(model: SpokenDialogueModel, turn_id: str, query: np.ndarray, sr: int,
                 history: list[SpokenTurn], answers_dir: Path) -> tuple[dict[str, Any], np.ndarray, int]:
    start = time.perf_counter()
    answer = model.respond(query, sr, history)
    respond_seconds = time.perf_counter() - start
    if answer.sample_rate <= 0:
        raise RunError(f"{model.name} answered {turn_id} with sample rate {answer.sample_rate}")
    wav = np.asarray(answer.audio)
    if wav.size:
        try:
            wav = check_waveform(wav, f"{model.name}'s answer to {turn_id}", sample_rate=answer.sample_rate)
        except AudioError as err:
            raise RunError(str(err)) from None
        save_audio(answers_dir / f"{turn_id}.flac", wav, answer.sample_rate)
        judge_start = time.perf_counter()
        transcript = judge.transcribe(wav, answer.sample_rate)
        judge_seconds = time.perf_counter() - judge_start
    else:
        wav = np.zeros(0, np.float32)
        transcript, judge_seconds = "", 0.0
    record = {"id": turn_id, "text": answer.text or "", "transcript": transcript,
              "sample_rate": answer.sample_rate, "seconds": wav.size / answer.sample_rate,
              "respond_seconds": respond_seconds, "judge_seconds": judge_seconds,
              "timings": dict(answer.timings), "extra": _json_safe(answer.extra)}
    write_json(answers_dir / f"{turn_id}.json", record)
    return record, wav, answer.sample_rate


def _load_answer(answers_dir: Path, turn_id: str) -> tuple[dict[str, Any], np.ndarray, int] | None:
    path = answers_dir / f"{turn_id}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    sr = record["sample_rate"]
    if record["seconds"] == 0:
        return record, np.zeros(0, np.float32), sr
    wav = load_audio(answers_dir / f"{turn_id}.flac", sr, normalize=False)
    return record, wav, sr


def collect_answers(model: SpokenDialogueModel, bench: Bench, out_dir: str | Path, model_dir: str | None = None,
                    progress: bool = True) -> int:
    """Ask every benchmark turn that has no cached answer yet; returns how many were asked now."""
    out_dir = Path(out_dir)
    _prepare(out_dir, model.name, model_dir, bench)
    answers_dir = out_dir / "answers"
    answers_dir.mkdir(exist_ok=True)
    turns = bench.turns
    done = {t for t in turns if (answers_dir / f"{t}.json").is_file()}
    bar = tqdm(total=len(turns), initial=len(done), unit="turn", desc=f"asking {model.name}",
               disable=not progress)
    asked = 0
    history: list[SpokenTurn] = []
    conversation = None
    for turn_id, query, _, sr in bench.audio():
        meta = turns[turn_id]
        if meta["conversation_id"] != conversation:
            conversation, history = meta["conversation_id"], []
        cached = _load_answer(answers_dir, turn_id) if turn_id in done else None
        if cached is None:
            cached = _answer_turn(model, turn_id, query, sr, list(history), answers_dir)
            asked += 1
            bar.update(1)
        record, wav, answer_sr = cached
        history += [SpokenTurn("human", audio=query, sample_rate=sr),
                    SpokenTurn("assistant", audio=wav if wav.size else None,
                               sample_rate=answer_sr if wav.size else None, text=record["text"],
                               extra=dict(record["extra"]))]  # e.g. the ids it generated, passed back
    bar.close()
    return asked


# ------------------------------------------------------------------------------------------------ scoring


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _scored_in_group(meta: dict[str, Any]) -> bool:
    """Multi-turn conversations are scored on their follow-ups; the opening question is only context."""
    return meta["group"] != "multi_turn" or meta["turn"] > 0


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    skills = [r["skill"] for r in rows if r["skill"] is not None]
    return {"n": len(rows),
            "score": 100 * _mean([r["quality"] for r in rows]) if rows else None,
            "factuality": 100 * _mean([r["fact"] for r in rows]) if rows else None,
            "relevance": 100 * _mean([r["topic"] for r in rows]) if rows else None,
            "chat": _mean([r["chat"] for r in rows]),
            "skill": 100 * _mean(skills) if skills else None}


def score_run(bench: Bench, out_dir: str | Path, llm_judge: Callable[[dict[str, Any], str], dict] | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Score the cached answers of a finished run; returns the report (also written by `write_report`)."""
    out_dir = Path(out_dir)
    run = json.loads((out_dir / "run.json").read_text())
    answers_dir = out_dir / "answers"
    turns = bench.turns
    missing = [t for t in turns if not (answers_dir / f"{t}.json").is_file()]
    if missing:
        raise RunError(f"{out_dir}: {len(missing)} turns have no answer yet (e.g. {missing[0]}); "
                       "run `aqaa eval run` again to finish them")
    loaded = {}
    for turn_id in tqdm(turns, desc="measuring answers", unit="turn", disable=not progress):
        record, wav, sr = _load_answer(answers_dir, turn_id)  # type: ignore[misc]
        evidence = Evidence(tokens(record["transcript"]), wav, sr, measure_answer(wav, sr))
        loaded[turn_id] = (record, evidence)
    neutral = styles.baseline([loaded[t][1].style_features() for t, meta in turns.items()
                               if meta["answer_style"] == "neutral"])
    rows = []
    for turn_id, meta in turns.items():
        record, evidence = loaded[turn_id]
        evidence.neutral, evidence.calibration = neutral, bench.manifest["style_calibration"]
        s = score_turn(meta["key"], evidence)
        prosody = evidence.prosody
        row = {"id": turn_id, "group": meta["group"], "family": meta["family"], "turn": meta["turn"],
               "scored": _scored_in_group(meta), "question": meta["query_text"], "expected": meta["answer_text"],
               "asked_style": meta["answer_style"], "text": record["text"], "transcript": record["transcript"],
               "fact": s.fact, "topic": s.topic, "skill": s.skill, "quality": s.quality, "chat": s.chat,
               "detail": s.detail, "seconds": record["seconds"], "respond_seconds": record["respond_seconds"],
               "judge_seconds": record.get("judge_seconds"),
               "timings": record["timings"],
               "prosody": prosody.as_dict() if prosody is not None else None}
        if llm_judge is not None and row["scored"]:
            row["llm"] = llm_judge(meta, record["transcript"])
        rows.append(row)
    return build_report(run, bench, rows, neutral)


def keys_sha256(bench: Bench) -> str:
    """Names what the answers were scored against: every turn's answer key and the style calibration."""
    keys = [[t["id"], t["key"]] for t in bench.manifest["turns"]]
    text = json.dumps([keys, bench.manifest["style_calibration"]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = sorted({k for r in rows for k in r["timings"]})
    out: dict[str, Any] = {f"median_{k}_s": float(np.median([r["timings"][k] for r in rows if k in r["timings"]]))
                           for k in keys}
    out["median_respond_s"] = float(np.median([r["respond_seconds"] for r in rows]))
    judged = [r["judge_seconds"] for r in rows if r.get("judge_seconds") is not None]
    out["judge_total_s"] = float(sum(judged)) if judged else None  # the ASR judge's own time, whole run
    audio = sum(r["seconds"] for r in rows)
    out["real_time_factor"] = sum(r["respond_seconds"] for r in rows) / audio if audio else None
    return out


def build_report(run: dict[str, Any], bench: Bench, rows: list[dict[str, Any]],
                 neutral: dict[str, float] | None) -> dict[str, Any]:
    scored = [r for r in rows if r["scored"]]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        groups[r["group"]].append(r)
    per_group = {g: _summary(groups[g]) for g in GROUPS if groups[g]}
    for g, summary in per_group.items():
        judged = [r["llm"] for r in groups[g] if r.get("llm") and r["llm"].get("chat") is not None]
        if judged:
            summary["llm_chat"] = _mean([j["chat"] for j in judged])
            summary["llm_factuality"] = 100 * _mean([j["factuality"] for j in judged])
            summary["llm_relevance"] = 100 * _mean([j["relevance"] for j in judged])
    present = list(per_group)

    def macro(field: str) -> float | None:
        values = [per_group[g][field] for g in present if per_group[g][field] is not None]
        return float(np.mean(values)) if values else None

    # The judge cannot transcribe singing, so sung answers do not count towards text-speech consistency.
    texts = [(r["text"], r["transcript"]) for r in rows if r["text"].strip() and r["asked_style"] != "sing"]
    consistency_wer = judge.wer([t for t, _ in texts], [h for _, h in texts]) if texts else None
    overall = {"factuality": macro("factuality"), "relevance": macro("relevance"), "chat": macro("chat"),
               "score": macro("score"), "turns": len(scored),
               "text_speech_wer": consistency_wer,
               "text_speech_consistency": None if consistency_wer is None else 100 * max(0.0, 1 - consistency_wer)}
    if any("llm_chat" in s for s in per_group.values()):
        overall["llm_chat"] = macro("llm_chat")
    nine = [per_group[d]["score"] for d in DIMENSIONS if d in per_group]
    overall["nine_dimension_score"] = float(np.mean(nine)) if len(nine) == len(DIMENSIONS) else None
    return {
        "format": REPORT_FORMAT,
        "model": run["model"], "model_dir": run.get("model_dir"),
        "bench": bench.name, "bench_version": bench.manifest["version"], "bench_sha256": bench.sha256,
        "keys_sha256": keys_sha256(bench),
        "judge": "pocketsphinx en-us (aqaa.judge)",
        "overall": overall,
        "dimensions": per_group,
        "latency": _latency(rows),
        "neutral_baseline": neutral,
        "turns": rows,
        "scored": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def run_benchmark(model: str | Path | SpokenDialogueModel, bench_dir: str | Path,
                  out_dir: str | Path | None = None,
                  llm_judge: Callable[[dict[str, Any], str], dict] | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Everything `aqaa eval run` does: load the system (a directory, or one already loaded), ask the benchmark
    (or resume), score, write the report files. `out_dir` defaults to `default_run_dir`. Returns the report,
    whose `run_dir` says where it was written."""
    from aqaa.eval.bench import open_bench
    from aqaa.eval.report import write_report
    from aqaa.pipeline import load_spoken_model

    bench = open_bench(bench_dir)
    model_dir = None
    if isinstance(model, (str, Path)):
        model_dir = str(model)
        model = load_spoken_model(model)
    out = Path(out_dir) if out_dir is not None else default_run_dir(model.name, bench)
    collect_answers(model, bench, out, model_dir=model_dir, progress=progress)
    report = score_run(bench, out, llm_judge=llm_judge, progress=progress)
    report["run_dir"] = str(out)
    write_report(report, out)
    return report


def default_run_dir(model_name: str, bench: Bench) -> Path:
    return Path("runs") / "eval" / f"{model_name}-{bench.name}-v{bench.manifest['version']}"

