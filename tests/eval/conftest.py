"""A tiny benchmark (one conversation per dimension, one multi-turn) and a reference run on it, shared by the
evaluation tests: built once per test session, in seconds."""

import shutil
from pathlib import Path

import pytest

from aqaa.eval.bench import BenchConfig, build_bench, open_bench

REPO = Path(__file__).resolve().parents[2]
needs_synth = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                 reason="synthesisers not installed")


def tiny_bench_config(**overrides) -> BenchConfig:
    settings = dict(name="tiny-bench", corpus_config=str(REPO / "configs" / "data" / "small.yaml"), seed=99,
                    items_per_dimension=1, multi_turn_conversations=1, style_sentences=2, check_overlap=False)
    settings.update(overrides)
    return BenchConfig(**settings)


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory):
    if shutil.which("flite") is None or shutil.which("espeak-ng") is None:
        pytest.skip("synthesisers not installed")
    out = tmp_path_factory.mktemp("bench") / "tiny"
    build_bench(tiny_bench_config(), out, workers=1, progress=False)
    return open_bench(out)


@pytest.fixture(scope="session")
def reference_run(tiny_bench, tmp_path_factory):
    """A finished, scored run of the ground-truth reference system: (run dir, report)."""
    from aqaa.eval.reference import ReferenceSystem
    from aqaa.eval.run import collect_answers, score_run

    out = tmp_path_factory.mktemp("runs") / "reference"
    collect_answers(ReferenceSystem(tiny_bench.directory), tiny_bench, out, progress=False)
    return out, score_run(tiny_bench, out, progress=False)
