import pytest
import torch

from aqaa.codec.mel import MelConfig
from aqaa.codec.tokenizer import Codes, TokenizerConfig
from aqaa.vocoder import CodesError, TokenLayout, VocoderConfig
from aqaa.vocoder.estimator import EstimatorConfig
from aqaa.vocoder.flow import FlowConfig

from ..codec.helpers import tiny_config


def test_layout_takes_the_frame_arithmetic_from_the_tokenizer():
    layout = TokenLayout.from_tokenizer(tiny_config())
    assert (layout.linguistic_frames, layout.semantic_frames, layout.group_frames) == (6, 4, 12)
    assert (layout.linguistic_codebook, layout.semantic_codebook) == (16, 32)
    assert (layout.sample_rate, layout.hop) == (16000, 160)
    assert layout.vocab.semantic_offset == 16 and layout.per_group == (2, 3)
    # covered frames: the shorter stream decides (5 linguistic = 30 frames, 9 semantic = 36 frames)
    assert layout.frames(5, 9) == 30 and layout.frames(6, 9) == 36
    ling = TokenLayout.from_tokenizer(tiny_config("linguistic"))
    assert ling.streams == "linguistic" and ling.frames(5, 0) == 30 and ling.per_group == (2, 0)
    assert TokenLayout.from_tokenizer(TokenizerConfig(), streams="semantic").frames(0, 9) == 36


def test_bad_codes_are_clear_errors():
    layout = TokenLayout.from_tokenizer(tiny_config())
    with pytest.raises(CodesError, match="linguistic code 16 is outside"):
        layout.check(Codes(torch.tensor([1, 16]), torch.tensor([1, 2, 3])))
    with pytest.raises(CodesError, match="semantic code -1 is outside"):
        layout.check(Codes(torch.tensor([1, 2]), torch.tensor([1, -1, 3])))
    with pytest.raises(CodesError, match="no audio to render.*needs both"):
        layout.check(Codes(torch.tensor([1, 2]), torch.tensor([], dtype=torch.long)))
    with pytest.raises(CodesError, match="1-D"):
        layout.check(Codes(torch.zeros(2, 2, dtype=torch.long), torch.tensor([1])))
    assert layout.check(Codes([1, 2], [3, 4, 5])).linguistic.dtype == torch.long
    # a single-stream vocoder ignores the other stream, but needs its own
    semantic_only = TokenLayout(streams="semantic", linguistic_codebook=16, semantic_codebook=32)
    assert semantic_only.frames(0, 3) == 12
    with pytest.raises(CodesError, match="needs semantic codes"):
        semantic_only.check(Codes(torch.tensor([1, 2]), torch.tensor([], dtype=torch.long)))


def test_vocoder_config_refuses_a_mel_off_the_token_grid():
    with pytest.raises(ValueError, match="sample rate and hop"):
        VocoderConfig(mel=MelConfig(hop=200))
    with pytest.raises(ValueError, match="must divide a token group"):
        VocoderConfig(flow=FlowConfig(estimator=EstimatorConfig(stride=5)))

