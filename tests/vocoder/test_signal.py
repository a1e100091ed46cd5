import numpy as np
import pytest
import torch

from aqaa.codec.mel import LogMel, MelConfig
from aqaa.vocoder.evaluate import mel_cepstral_distortion
from aqaa.vocoder.griffin_lim import griffin_lim
from aqaa.vocoder.mel2wav import Mel2WavConfig, MelToWave
from aqaa.vocoder.stft import OverlapAdd, centred_start, frames

from ..codec.helpers import speechy


@pytest.mark.parametrize("n, hop, first", [(640, 160, -360), (400, 160, -240), (512, 128, 0)])
def test_windowed_frames_overlap_add_back_to_the_signal(n, hop, first):
    signal = torch.from_numpy(speechy(0.5))[None]
    count = signal.shape[1] // hop
    window = torch.hann_window(n)
    cut = frames(signal, n, hop, first, count) * window  # analysis × window; OLA divides by Σ window²
    assert cut.shape == (1, count, n)
    ola = OverlapAdd(window, hop, first)
    out = torch.cat([ola.push(cut * window), ola.flush(count * hop)], dim=1)[0]
    assert out.shape == (count * hop,)
    inner = slice(n, count * hop - n)  # away from the ends, where fewer frames overlap
    assert torch.allclose(out[inner], signal[0, inner], atol=1e-5)


def test_overlap_add_in_pieces_equals_whole():
    window = torch.hann_window(640)
    x = torch.randn(2, 37, 640)
    whole = OverlapAdd(window, 160, -360, batch=2)
    reference = torch.cat([whole.push(x), whole.flush(37 * 160)], dim=1)
    pieces = OverlapAdd(window, 160, -360, batch=2)
    parts = [pieces.push(x[:, a:b]) for a, b in ((0, 1), (1, 2), (2, 10), (10, 10), (10, 37))]
    streamed = torch.cat([*parts, pieces.flush(37 * 160)], dim=1)
    assert torch.allclose(streamed, reference, atol=1e-6) and reference.shape == (2, 37 * 160)
    assert centred_start(160, 400, 640) == -360  # synthesis frame t centred on mel frame t's window


def test_mel2wav_streams_exactly_and_lines_up_with_the_mel():
    torch.manual_seed(0)
    model = MelToWave(MelConfig(), Mel2WavConfig(channels=16, blocks=2, expansion=2)).eval()
    mel = torch.randn(1, 53, 80) - 5
    with torch.no_grad():
        offline = model(mel)[0]
        stream = model.stream()
        parts = [stream.push(mel[:, a:b]) for a, b in ((0, 1), (1, 7), (7, 40), (40, 53))]
        streamed = torch.cat([*parts, stream.flush()])
    assert offline.shape == (53 * 160,)
    assert torch.allclose(streamed, offline, atol=1e-5)


def test_griffin_lim_rebuilds_intelligible_spectra():
    config = MelConfig()
    wav = speechy(1.0)
    mel = LogMel(config)(torch.from_numpy(wav)[None])[0]
    rebuilt = griffin_lim(mel, config, iterations=32)
    assert rebuilt.shape == (len(mel) * config.hop,) and rebuilt.dtype == np.float32
    noise = np.random.default_rng(0).normal(0, 0.1, len(wav)).astype(np.float32)
    # Griffin-Lim keeps the spectral envelope: far closer to the original than noise of the same level
    assert mel_cepstral_distortion(wav, rebuilt, config) < 0.5 * mel_cepstral_distortion(wav, noise, config)
    assert mel_cepstral_distortion(wav, wav, config) == 0.0
    with pytest.raises(ValueError, match="log-mel"):
        griffin_lim(mel[:, :40], config)
