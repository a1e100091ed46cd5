import json
import shutil

import pytest
from typer.testing import CliRunner

from aqaa.audio import load_audio
from aqaa.cli import app

runner = CliRunner()
needs_synth = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                                 reason="synthesisers not installed")


def test_help_everywhere():
    for args in ([], ["data"], ["data", "build"], ["data", "info"], ["data", "play"], ["demo"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_missing_config_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["data", "build", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "corpus config not found" in result.output


def test_info_on_a_non_corpus_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["data", "info", str(tmp_path), "--wer-sample", "0"])
    assert result.exit_code == 2
    assert "not a built corpus" in result.output


@needs_synth
def test_build_info_play(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: clitest\nseed: 5\nconversations: 6\nshard_size: 3\ntest_fraction: 0.5\n")
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["data", "build", str(config), "--out", str(out), "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "manifest_sha256:" in result.output
    info = runner.invoke(app, ["data", "info", str(out), "--wer-sample", "0", "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["examples"] >= 6 and sum(summary["split"].values()) == summary["examples"]
    played = runner.invoke(app, ["data", "play", str(out), "--split", "test", "--out", str(tmp_path / "wav")])
    assert played.exit_code == 0, played.output
    answer = load_audio(tmp_path / "wav" / "answer.wav")
    assert answer.size > 16000 * 0.3
