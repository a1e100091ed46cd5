import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from aqaa.audio import load_audio
from aqaa.cli import app
from aqaa.codec.tokenizer import AudioTokenizer
from aqaa.vocoder import CodesError, TokenLayout, Vocoder
from aqaa.vocoder.commands import check_tokenizer, read_tokens, resynthesize

from ..codec.helpers import speechy, tiny_tokenizer
from .helpers import tiny_vocoder

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tokenizer = tiny_tokenizer()
    tokenizer.save(root / "tokenizer")
    tiny_vocoder(TokenLayout.from_tokenizer(tokenizer.config)).save(root / "vocoder")
    sf.write(root / "speech.wav", speechy(1.5), 16000)
    return root


def test_synth_speaks_what_tokenize_prints(models, tmp_path):
    tokens = runner.invoke(app, ["tokenize", str(models / "speech.wav"), "--model", str(models / "tokenizer"),
                                 "--json"])
    assert tokens.exit_code == 0, tokens.output
    (tmp_path / "tokens.json").write_text(tokens.output)
    data = json.loads(tokens.output)
    result = runner.invoke(app, ["synth", str(tmp_path / "tokens.json"), "-o", str(tmp_path / "out.wav"),
                                 "--vocoder", str(models / "vocoder"), "--steps", "2"])
    assert result.exit_code == 0, result.output
    wav = load_audio(tmp_path / "out.wav", normalize=False)
    frames = min(6 * len(data["linguistic"]), 4 * len(data["semantic"])) // 4 * 4
    assert len(wav) == frames * 160 and np.abs(wav).max() > 0
    # ids alone give the same codes (whole groups only)
    (tmp_path / "ids.json").write_text(json.dumps({"ids": data["ids"]}))
    layout = TokenLayout.from_tokenizer(tiny_tokenizer().config)
    from_ids = read_tokens(tmp_path / "ids.json", layout)
    groups = len(data["ids"]) // 5
    assert from_ids.linguistic.tolist() == data["linguistic"][: 2 * groups]
    assert from_ids.semantic.tolist() == data["semantic"][: 3 * groups]


def test_resynth_round_trip(models, tmp_path):
    for extra in ([], ["--griffin-lim"]):
        out = tmp_path / f"re{len(extra)}.wav"
        result = runner.invoke(app, ["resynth", str(models / "speech.wav"), "-o", str(out), "--tokenizer",
                                     str(models / "tokenizer"), "--vocoder", str(models / "vocoder"), "--steps",
                                     "1", *extra])
        assert result.exit_code == 0, result.output
        assert "wrote" in result.output and abs(len(load_audio(out)) - 1.5 * 16000) <= 480
    # a recording far too quiet for the tokenizer is read louder, and the round trip keeps its level
    quiet = load_audio(models / "speech.wav", normalize=False) * 10 ** (-30 / 20)
    sf.write(tmp_path / "quiet.wav", quiet, 16000, subtype="FLOAT")
    result = runner.invoke(app, ["resynth", str(tmp_path / "quiet.wav"), "-o", str(tmp_path / "q.wav"),
                                 "--tokenizer", str(models / "tokenizer"), "--vocoder", str(models / "vocoder"),
                                 "--steps", "1", "--seed", "3"])
    assert result.exit_code == 0 and "too quiet" in result.output, result.output
    tokenizer = AudioTokenizer.from_pretrained(models / "tokenizer")
    lifted, gain = tokenizer.lift_quiet(quiet)
    expected, timings = resynthesize(lifted, tokenizer, Vocoder.from_pretrained(models / "vocoder"), 1, None, 3)
    assert timings["gain_db"] == 0.0  # the lifted copy is loud enough already
    np.testing.assert_allclose(load_audio(tmp_path / "q.wav", normalize=False), expected * 10 ** (-gain / 20),
                               atol=2 / 32768)  # PCM-16 file
    missing = runner.invoke(app, ["resynth", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav"),
                                  "--tokenizer", str(models / "tokenizer"), "--vocoder", str(models / "vocoder")])
    assert missing.exit_code == 2 and "nope.wav" in missing.output


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ("[1, 2, 3]", "expected a JSON object"),
    ('{"text": "hi"}', "no 'linguistic'/'semantic' or 'ids' key"),
    ('{"linguistic": [1, 2], "semantic": [1, 2, 99]}', "semantic code 99 is outside"),
    ('{"linguistic": [1, "a"], "semantic": [1]}', "must be a list of integers"),
    ('{"linguistic": [], "semantic": []}', "no audio to render"),
    ('{"ids": [1, 2, 3]}', "whole number of 5-token groups"),
    ('{"ids": [1, 2, 3, 4, 5]}', "2 linguistic \\+ 3 semantic group pattern"),
    ('{"ids": [1, 2, 20, 21, 9999]}', "audio ids must lie in"),
    ('{"ids": [1, 2, 20, 21, 22], "streams": "semantic"}', "layout"),
])
def test_bad_tokens_files_are_clear_errors(models, tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    layout = TokenLayout.from_tokenizer(tiny_tokenizer().config)
    with pytest.raises(CodesError, match=message):
        read_tokens(path, layout)
    result = runner.invoke(app, ["synth", str(path), "-o", str(tmp_path / "x.wav"), "--vocoder",
                                 str(models / "vocoder")])
    assert result.exit_code == 2 and "t.json" in result.output and not (tmp_path / "x.wav").exists()


def test_a_vocoder_refuses_another_tokenizers_codes(models):
    from aqaa.codec.tokenizer import AudioTokenizer
    from aqaa.vocoder import Vocoder

    from ..codec.helpers import tiny_config

    config = tiny_config()
    config.semantic.codebook_size = 64
    with pytest.raises(ValueError, match="semantic_codebook: vocoder 32, tokenizer 64"):
        check_tokenizer(Vocoder.from_pretrained(models / "vocoder"), AudioTokenizer(config))


def test_a_vocoder_warns_when_paired_with_other_weights_than_it_learned_codes_from(models):
    import warnings

    from aqaa.checkpoint import state_fingerprint
    from aqaa.vocoder import Vocoder

    vocoder = Vocoder.from_pretrained(models / "vocoder")
    tokenizer = tiny_tokenizer()
    check_tokenizer(vocoder, tokenizer)  # trained on no recorded tokenizer: nothing to compare
    vocoder.config.tokenizer_sha256 = state_fingerprint(tokenizer.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_tokenizer(vocoder, tokenizer)  # its own tokenizer: silent
    with pytest.warns(UserWarning, match="other tokenizer weights"):
        check_tokenizer(vocoder, tiny_tokenizer(seed=1))
