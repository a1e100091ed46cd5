import json

from aqaa.home import DEFAULT_THREADS, system_dir, system_threads
from aqaa.lm.spoken import SpokenLMConfig


def test_system_dir_follows_aqaa_home(tmp_path, monkeypatch):
    monkeypatch.delenv("AQAA_HOME", raising=False)
    assert (system_dir() / "config.json").is_file()  # the checkout's shipped system
    monkeypatch.setenv("AQAA_HOME", str(tmp_path))
    assert system_dir() == tmp_path


def test_system_threads_reads_the_system_config(tmp_path, monkeypatch):
    assert SpokenLMConfig().threads == DEFAULT_THREADS
    monkeypatch.setenv("AQAA_HOME", str(tmp_path))
    assert system_threads() == DEFAULT_THREADS  # no config there
    (tmp_path / "config.json").write_text(json.dumps({"threads": 3}))
    assert system_threads() == 3 and system_threads(tmp_path) == 3
    (tmp_path / "config.json").write_text(json.dumps({"threads": None}))
    assert system_threads() == DEFAULT_THREADS
