"""Benchmark reports for people: a Markdown table per dimension, a radar chart like the paper's, run comparison."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aqaa.checkpoint import write_json
from aqaa.data.tasks import DIMENSIONS

LABELS = {
    "singing": "Singing", "creativity": "Creativity", "role_playing": "Role-playing",
    "logical_reasoning": "Logical reasoning", "voice_understanding": "Voice understanding",
    "voice_instruction_following": "Voice instruction following", "gaming": "Gaming",
    "speech_emotion_control": "Speech emotion control", "language_ability": "Language ability",
    "multi_turn": "Multi-turn (follow-ups)",
}
HOW_TO_READ = (
    "Scored from the answer's speech: the ASR judge's transcript for content, the audio for style, emotion and "
    "melody. Score = mean per turn of factuality (or of factuality and the asked skill: style, emotion, persona); "
    "Factuality = the known answer was heard; Relevance = the answer is about the question; "
    "Chat = 1 + 2·relevant + 2·relevant·score per turn (1 off topic, 3 on topic but wrong, 5 right), averaged. "
    "Overall rows average the dimensions. The reference system (the corpus's own answers) shows the judge's "
    "ceiling.")


def _ordered(groups: Iterable[str]) -> list[str]:
    """Groups in the benchmark's order (report.json stores them sorted by name)."""
    groups = set(groups)
    return [g for g in LABELS if g in groups] + sorted(groups - set(LABELS))


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def load_report(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no report.json; run `aqaa eval run` to finish and score it")
    return json.loads(path.read_text())


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown document: header, table per dimension, overall, latency."""
    o = report["overall"]
    llm = "llm_chat" in o
    lines = [
        f"# {report['model']} on {report['bench']} v{report['bench_version']}",
        "",
        f"benchmark manifest sha256: `{report['bench_sha256']}`  ",
        f"answer keys and style calibration sha256: `{report['keys_sha256']}`  ",
        f"judge: {report['judge']}; scored {report['scored']}",
        "",
        "| dimension | turns | score | factuality % | relevance % | chat (1–5) | skill % |"
        + (" LLM chat |" if llm else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if llm else ""),
    ]
    for group in _ordered(report["dimensions"]):
        s = report["dimensions"][group]
        row = (f"| {LABELS.get(group, group)} | {s['n']} | {_fmt(s['score'])} | {_fmt(s['factuality'])} | "
               f"{_fmt(s['relevance'])} | {_fmt(s['chat'], 2)} | {_fmt(s['skill'])} |")
        lines.append(row + (f" {_fmt(s.get('llm_chat'), 2)} |" if llm else ""))
    lines.append(f"| **overall** | {o['turns']} | **{_fmt(o['score'])}** | **{_fmt(o['factuality'])}** | "
                 f"**{_fmt(o['relevance'])}** | **{_fmt(o['chat'], 2)}** | |"
                 + (f" **{_fmt(o.get('llm_chat'), 2)}** |" if llm else ""))
    lat = report["latency"]
    lines += [
        "",
        f"Text–speech consistency: WER between the system's text and the transcript of its speech "
        f"{_fmt(None if o['text_speech_wer'] is None else 100 * o['text_speech_wer'])}% "
        f"(consistency {_fmt(o['text_speech_consistency'])}%).  ",
        "Latency (medians per turn): " + ", ".join(
            f"{k.removeprefix('median_').removesuffix('_s')} {v:.3f} s" for k, v in lat.items()
            if k.startswith("median_")) + f"; real-time factor {_fmt(lat['real_time_factor'], 3)}; "
        f"the ASR judge took {_fmt(lat.get('judge_total_s'), 0)} s in all.",
        "",
        HOW_TO_READ,
        "",
    ]
    return "\n".join(lines)


def radar(reports: list[dict[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """A radar chart of the nine dimension scores (0–100), one polygon per report, like the paper's figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    angles = np.linspace(0, 2 * np.pi, len(DIMENSIONS), endpoint=False)
    fig, ax = plt.subplots(figsize=(7.5, 7.5), subplot_kw={"projection": "polar"})
    for report in reports:
        values = [report["dimensions"].get(d, {}).get("score") or 0.0 for d in DIMENSIONS]
        closed = np.append(values, values[0])
        ax.plot(np.append(angles, angles[0]), closed, linewidth=2, label=report["model"])
        ax.fill(np.append(angles, angles[0]), closed, alpha=0.12)
    ax.set_xticks(angles)
    ax.set_xticklabels([LABELS[d].replace(" ", "\n", 1) for d in DIMENSIONS], fontsize=9)
    ax.tick_params(axis="x", pad=14)
    ax.set_ylim(0, 100)
    ax.set_yticks([20, 40, 60, 80, 100])
    ax.set_yticklabels(["20", "40", "60", "80", "100"], fontsize=7)
    bench = reports[0]
    ax.set_title(title or f"{bench['bench']} v{bench['bench_version']} ({bench['bench_sha256'][:12]})", pad=24)
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.12), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """report.json, report.md and radar.png in `out_dir` (each written atomically)."""
    out_dir = Path(out_dir)
    write_json(out_dir / "report.json", report)
    md = out_dir / "report.md"
    tmp = md.with_name(".report.md.tmp")
    tmp.write_text(markdown(report))
    tmp.replace(md)
    return {"json": out_dir / "report.json", "markdown": md, "radar": radar([report], out_dir / "radar.png")}


def compare(reports: list[dict[str, Any]]) -> str:
    """Several runs side by side (Markdown): each dimension's score, then the overall figures."""
    names = [r["model"] for r in reports]
    lines = []
    hashes = {r["bench_sha256"] for r in reports}
    if len(hashes) > 1:
        lines += ["**warning: these runs used different benchmarks; their numbers are not comparable** "
                  f"({', '.join(sorted(h[:12] for h in hashes))})", ""]
    else:
        lines += [f"benchmark {reports[0]['bench']} v{reports[0]['bench_version']}, manifest sha256 "
                  f"`{reports[0]['bench_sha256']}`", ""]
    lines += ["| dimension (score) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    groups = _ordered({g for r in reports for g in r["dimensions"]})
    for g in groups:
        cells = [_fmt(r["dimensions"].get(g, {}).get("score")) for r in reports]
        lines.append(f"| {LABELS.get(g, g)} | " + " | ".join(cells) + " |")
    for field, label, digits in (("factuality", "Factuality %", 1), ("relevance", "Relevance %", 1),
                                 ("chat", "Chat (1–5)", 2), ("text_speech_consistency", "Text–speech consistency %",
                                                             1)):
        cells = [_fmt(r["overall"].get(field), digits) for r in reports]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    cells = [_fmt(r["latency"].get("median_respond_s"), 3) for r in reports]
    lines.append("| median seconds per answer | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_runs(run_dirs: list[str | Path], radar_path: str | Path | None = None) -> str:
    reports = [load_report(d) for d in run_dirs]
    if radar_path is not None:
        radar(reports, radar_path)
    return compare(reports)
