import json
import shutil

from typer.testing import CliRunner

from aqaa.cli import app

from .conftest import needs_synth

runner = CliRunner()


def test_help_for_every_benchmark_command():
    for command in ("build-bench", "run", "compare", "reference-system", "cascade-system"):
        result = runner.invoke(app, ["eval", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_clear_errors(tmp_path):
    result = runner.invoke(app, ["eval", "build-bench", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "benchmark config not found" in result.output
    (tmp_path / "system").mkdir()
    result = runner.invoke(app, ["eval", "run", "--model", str(tmp_path / "system"), "--bench", str(tmp_path)])
    assert result.exit_code == 2 and "not a built benchmark" in result.output
    (tmp_path / "answerer").mkdir()
    (tmp_path / "answerer" / "config.json").write_text(json.dumps({"kind": "nobody.knows"}))
    result = runner.invoke(app, ["eval", "cascade-system", str(tmp_path / "answerer"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "not a text answerer" in result.output
    result = runner.invoke(app, ["eval", "compare", str(tmp_path)])
    assert result.exit_code == 2 and "no report.json" in result.output


@needs_synth
def test_run_and_compare_from_the_command_line(reference_run, tiny_bench, tmp_path):
    system = tmp_path / "system"
    result = runner.invoke(app, ["eval", "reference-system", str(tiny_bench.directory), "--out", str(system)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "run"
    shutil.copytree(reference_run[0], run_dir)  # its answers are cached: the command only scores them
    result = runner.invoke(app, ["eval", "run", "--model", str(system), "--bench", str(tiny_bench.directory),
                                 "--out", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert tiny_bench.sha256 in result.output and "| Voice understanding |" in result.output
    for name in ("report.json", "report.md", "radar.png"):
        assert (run_dir / name).is_file()
    result = runner.invoke(app, ["eval", "compare", str(run_dir), str(run_dir), "--radar", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "Chat (1–5)" in result.output and (tmp_path / "r.png").is_file()
