"""Corpus build speed: is the builder bound by synthesis, not by Python?

Builds a corpus config (default: configs/data/small.yaml) into a temporary directory with all cores, then, in the
same process and with the same number of worker processes, runs only the synthesiser for the same utterances
(each example's query in its voice and prosody, its answer in the assistant voice and style; sung answers as
plain speech): the synthesis floor. Prints
the build time, the floor, and last `synthesis_share` = floor / build (1.0 would mean no overhead at all).

    .venv/bin/python bench/corpus_build.py [CONFIG] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from aqaa.data.build import _scratch_dir, build_corpus
from aqaa.data.config import CorpusConfig
from aqaa.data.speech import Prosody, synthesize, voice_from_name


def _utterances(corpus: Path, config: CorpusConfig) -> list[tuple[str, str, Prosody]]:
    """(text, voice name, prosody) of every query and answer in the built corpus (sung answers as speech)."""
    items = []
    columns = ["query_text", "query_voice", "query_rate", "query_pitch", "answer_text", "answer_style"]
    for path in sorted(corpus.glob("data/*/*.parquet")):
        for row in pq.read_table(path, columns=columns).to_pylist():
            items.append((row["query_text"], row["query_voice"], Prosody(row["query_rate"], row["query_pitch"])))
            style = "neutral" if row["answer_style"] == "sing" else row["answer_style"]
            items.append((row["answer_text"], config.assistant_voice, config.styles[style]))
    return items


def _synthesize_all(items: list[tuple[str, str, Prosody]], sample_rate: int) -> None:
    scratch = _scratch_dir()  # the same scratch space the builder uses
    for text, voice, prosody in items:
        synthesize(text, voice_from_name(voice), prosody, sample_rate, Path(scratch) if scratch else None)


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
        items = _utterances(out, config)
    chunks = [items[i :: args.workers] for i in range(args.workers)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(_synthesize_all, chunks, [config.sample_rate] * args.workers))
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
