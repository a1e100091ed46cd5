"""Corpus build speed: is the builder bound by synthesis, not by Python?

Builds a corpus config (default: configs/data/small.yaml) into a temporary directory with all cores, then, in the
same process and with the same number of worker processes, runs only the synthesiser commands for the same
utterances (each example's query in its voice and answer in the assistant voice): the synthesis floor. Prints
the build time, the floor, and last `synthesis_share` = floor / build (1.0 would mean no overhead at all).

    .venv/bin/python bench/corpus_build.py [CONFIG] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from aqaa.data.build import build_corpus
from aqaa.data.config import CorpusConfig
from aqaa.data.speech import voice_from_name


def _commands(corpus: Path, config: CorpusConfig) -> list[list[str]]:
    """Synthesiser command lines for every query and (non-sung) answer in the built corpus."""
    cmds = []
    columns = ["query_text", "query_voice", "query_rate", "answer_text", "answer_style"]
    assistant = voice_from_name(config.assistant_voice)
    for path in sorted(corpus.glob("data/*/*.parquet")):
        for row in pq.read_table(path, columns=columns).to_pylist():
            voice = voice_from_name(row["query_voice"])
            if voice.engine == "flite":
                cmds.append(["flite", "-voice", voice.ident, "-t", row["query_text"], "-o", "none"])
            else:
                cmds.append(["espeak-ng", "-v", voice.ident, "-s", str(int(175 * row["query_rate"])), "-w",
                             os.devnull, row["query_text"]])
            stretch = 1.0 / config.styles[row["answer_style"]].rate
            cmds.append(["flite", "-voice", assistant.ident, "--setf", f"duration_stretch={stretch:.3f}", "-psdur",
                         "-t", row["answer_text"], "-o", "none"])
    return cmds


def _run_all(cmds: list[list[str]]) -> None:
    for cmd in cmds:
        subprocess.run(cmd, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", default="configs/data/small.yaml")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    config = CorpusConfig.from_yaml(args.config)
    with tempfile.TemporaryDirectory(prefix="aqaa-bench-") as tmp:
        out = Path(tmp) / "corpus"
        start = time.perf_counter()
        manifest = build_corpus(config, out, workers=args.workers, progress=False)
        build_s = time.perf_counter() - start
        cmds = _commands(out, config)
    chunks = [cmds[i :: args.workers] for i in range(args.workers)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(_run_all, chunks))
    floor_s = time.perf_counter() - start
    print(f"config: {args.config}")
    print(f"workers: {args.workers}")
    print(f"examples: {manifest['examples']}")
    print(f"audio_hours: {manifest['hours']}")
    print(f"build_s: {build_s:.1f}")
    print(f"synthesis_floor_s: {floor_s:.1f}")
    print(f"examples_per_s: {manifest['examples'] / build_s:.1f}")
    print(f"synthesis_share: {floor_s / build_s:.2f}")


if __name__ == "__main__":
    main()
