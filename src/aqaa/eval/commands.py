"""The benchmark's commands under `aqaa eval`: build-bench, run, compare, reference-system, cascade-system.

Imports of the evaluation code happen inside each command, so `aqaa --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def build_bench_command(
    config: Annotated[Path, typer.Argument(help="Benchmark config YAML, e.g. configs/eval/bench.yaml")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default: corpora/<name>-v<version>)")] = None,
    workers: Annotated[int, typer.Option(help="Parallel synthesis processes (default: all cores)")] = 0,
    quiet: Annotated[bool, typer.Option(help="No progress bars")] = False,
) -> None:
    """Build the frozen benchmark from held-out phrasings and voices. Deterministic; an interrupted build resumes."""
    from aqaa.data.speech import SynthesisError
    from aqaa.eval.bench import BenchError, build_bench, load_bench_config

    try:
        cfg = load_bench_config(config)
        out_dir = out or Path("corpora") / f"{cfg.name}-v{cfg.version}"
        bench = build_bench(cfg, out_dir, workers=workers or os.cpu_count() or 1, progress=not quiet)
    except (FileNotFoundError, ValueError, BenchError, SynthesisError) as err:
        _fail(str(err))
    turns = len(bench["turns"])
    typer.echo(f"built {bench['name']} v{bench['version']}: {len(bench['conversations'])} conversations, "
               f"{turns} turns, in {out_dir} ({bench['build_seconds_last_run']:.0f} s)")
    groups = ", ".join(f"{g} {n}" for g, n in bench["groups"].items())
    typer.echo(f"conversations per group: {groups}")
    if bench["overlap"]:
        o = bench["overlap"]
        typer.echo("questions also in the training corpus (same text and voice / same text): "
                   + "; ".join(f"{split} {o[split]['text_and_voice']} / {o[split]['text_only']}"
                               for split in ("train", "validation", "test") if split in o))
    typer.echo(f"manifest_sha256: {bench['manifest_sha256']}")


def run_command(
    model: Annotated[Path, typer.Option(help="System directory (its config.json names the kind)")],
    bench: Annotated[Path, typer.Option(help="Benchmark directory from `aqaa eval build-bench`")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/eval/<model>-<bench>)")] = None,
    llm_judge: Annotated[bool, typer.Option("--llm-judge", help="Also grade with an LLM (off by default)")] = False,
    llm_judge_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible endpoint (default: $AQAA_LLM_JUDGE_URL)")] = None,
    llm_judge_model: Annotated[str | None, typer.Option(
        help="Model name at the endpoint (default: $AQAA_LLM_JUDGE_MODEL)")] = None,
    llm_judge_cache: Annotated[Path | None, typer.Option(
        help="Cache of LLM grades (default: ~/.cache/aqaa/llm_judge)")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars")] = False,
) -> None:
    """Ask the system every benchmark question, score its speech, write report.json, report.md and radar.png.

    Answers are cached as they come: rerun the same command after an interruption to continue."""
    from aqaa.audio import AudioError
    from aqaa.eval.bench import BenchError
    from aqaa.eval.llm_judge import LLMJudge, LLMJudgeError
    from aqaa.eval.report import markdown
    from aqaa.eval.run import RunError, run_benchmark

    try:
        grader = LLMJudge.from_env(llm_judge_url, llm_judge_model, llm_judge_cache) if llm_judge else None
        report = run_benchmark(model, bench, out, llm_judge=grader, progress=not quiet)
    except (FileNotFoundError, ValueError, AudioError, BenchError, RunError, LLMJudgeError) as err:
        _fail(str(err))
    typer.echo(markdown(report))
    out_dir = Path(report["run_dir"])
    typer.echo(f"wrote {out_dir / 'report.json'}, {out_dir / 'report.md'}, {out_dir / 'radar.png'}")


def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (each with a report.json)")],
    radar: Annotated[Path | None, typer.Option(help="Also draw all runs on one radar chart (PNG)")] = None,
) -> None:
    """Put several benchmark runs side by side (Markdown)."""
    from aqaa.eval.report import compare_runs

    try:
        typer.echo(compare_runs(runs, radar))
    except (FileNotFoundError, ValueError, KeyError) as err:
        _fail(str(err))
    if radar is not None:
        typer.echo(f"wrote {radar}")


def reference_system_command(
    bench: Annotated[Path, typer.Argument(help="Benchmark directory")],
    out: Annotated[Path, typer.Option(help="System directory to write")],
    wrong: Annotated[bool, typer.Option("--wrong", help="Give wrong answers instead (a floor)")] = False,
) -> None:
    """Write a system that answers the benchmark with its ground-truth answers (the ceiling), or wrong ones."""
    from aqaa.eval.bench import BenchError
    from aqaa.eval.reference import save_reference_system

    try:
        path = save_reference_system(out, bench, "wrong" if wrong else "truth")
    except (ValueError, BenchError) as err:
        _fail(str(err))
    typer.echo(f"wrote {path / 'config.json'}")


def cascade_system_command(
    answerer: Annotated[Path, typer.Argument(help="Text answerer directory (the text-only LM)")],
    out: Annotated[Path, typer.Option(help="System directory to write")],
    voice: Annotated[str, typer.Option(help="Voice that speaks the answers")] = "flite:awb",
) -> None:
    """Write a cascade system: pocketsphinx ASR → the text answerer → flite."""
    from aqaa.eval.cascade import load_text_answerer, save_cascade_system

    try:
        load_text_answerer(answerer)  # fail now if it cannot be loaded
        path = save_cascade_system(out, answerer, voice)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"wrote {path / 'config.json'}")


def add_commands(eval_app: typer.Typer) -> None:
    eval_app.command("build-bench")(build_bench_command)
    eval_app.command("run")(run_command)
    eval_app.command("compare")(compare_command)
    eval_app.command("reference-system")(reference_system_command)
    eval_app.command("cascade-system")(cascade_system_command)
