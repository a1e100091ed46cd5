import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aqaa.codec.data import frame_targets
from aqaa.codec.kmeans import kmeans
from aqaa.codec.linguistic import LinguisticModel
from aqaa.codec.mel import LogMel
from aqaa.codec.phones import text_to_phone_ids
from aqaa.codec.semantic import SemanticModel
from aqaa.trainer import TrainConfig, train

from .helpers import tiny_config

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
SENTENCES = ["the cat sat on the mat", "seven plus five is twelve", "paris is the capital of france",
             "say that again please"]


@pytest.fixture(scope="module")
def batch():
    from aqaa.data.speech import Prosody, synthesize, voice_from_name

    config = tiny_config()
    mel_fn = LogMel(config.linguistic.mel)
    mels, phones, targets = [], [], []
    for text in SENTENCES:
        wav = synthesize(text, voice_from_name("flite:awb"), Prosody(), 16000).wav
        mel = mel_fn(torch.from_numpy(wav)[None])[0]
        mels.append(mel)
        phones.append(torch.tensor(text_to_phone_ids(text)[0]))
        targets.append([torch.from_numpy(x) for x in frame_targets(wav, config.linguistic.mel, len(mel))])
    lengths = torch.tensor([len(m) for m in mels])
    t = int(lengths.max()) // 4 * 4
    pad = torch.nn.utils.rnn.pad_sequence
    per_token = [pad([x[i][:t] for x in targets], batch_first=True)[:, :t].reshape(len(mels), t // 4, 4).mean(-1)
                 for i in range(3)]
    return {"mel": pad(mels, batch_first=True), "mel_lengths": lengths,
            "phones": pad(phones, batch_first=True), "phone_lengths": torch.tensor([len(p) for p in phones]),
            "log_f0": per_token[0], "voiced": (per_token[1] > 0.5).float(), "log_energy": per_token[2]}


def _normalize(model, batch):
    mel = batch["mel"].reshape(-1, batch["mel"].shape[-1])
    model.encoder.set_normalization(mel.mean(0), mel.std(0))


@needs_flite
def test_ctc_training_lowers_the_loss(batch):
    torch.manual_seed(0)
    model = LinguisticModel(tiny_config().linguistic)
    _normalize(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model.compute_loss(batch["mel"], batch["mel_lengths"], batch["phones"], batch["phone_lengths"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@needs_flite
def test_semantic_training_lowers_the_loss(batch):
    torch.manual_seed(0)
    model = SemanticModel(tiny_config().semantic)
    _normalize(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    keys = ("mel", "mel_lengths", "log_f0", "voiced", "log_energy")
    losses = []
    for _ in range(40):
        parts = model.compute_loss(*(batch[k] for k in keys))
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["mel"].item())
    assert losses[-1] < 0.8 * losses[0]


def _toy_training(work, steps, crash_after=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    data = torch.randn(64, 4)
    seen = []

    def make_batch(index):
        if crash_after is not None and len(seen) == crash_after:
            raise KeyboardInterrupt
        seen.append(index)
        x = data[index]
        return {"x": x, "y": x.sum(-1, keepdim=True)}

    def loss_fn(net, b):
        return {"loss": (net(b["x"]) - b["y"]).pow(2).mean()}

    config = TrainConfig(steps=steps, lr=1e-2, warmup_steps=2, checkpoint_every=3, log_every=1)
    epoch_batches = lambda epoch: [list(range(i, i + 8)) for i in range(0, 64, 8)][epoch % 2:]  # noqa: E731
    train(model, loss_fn, epoch_batches, make_batch, config, work, "toy")
    return model, seen


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    straight, _ = _toy_training(tmp_path / "a", 11)
    with pytest.raises(KeyboardInterrupt):
        _toy_training(tmp_path / "b", 11, crash_after=7)  # dies after the step-6 checkpoint
    resumed, seen = _toy_training(tmp_path / "b", 11)
    assert len(seen) == 11 - 6
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    saved = load_file(str(tmp_path / "b" / "toy" / "model.safetensors"))
    assert torch.equal(saved["0.weight"], resumed[0].weight.detach())


def test_kmeans_finds_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.3 * torch.randn(200, 2, generator=gen) for c in centres])
    found = kmeans(x, 3, iters=10)
    dist = torch.cdist(found, centres).min(0).values
    assert float(dist.max()) < 0.2
    with pytest.raises(ValueError, match="at least"):
        kmeans(x[:2], 3)


def test_frame_targets_follow_pitch_and_level():
    sr = 16000
    t = np.arange(sr) / sr
    wav = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    f0, voiced, energy = frame_targets(wav, tiny_config().linguistic.mel, 100)
    assert voiced[10:90].mean() > 0.95
    assert np.median(f0[voiced > 0]) == pytest.approx(np.log2(200 / 120), abs=0.02)
    assert np.median(energy) == pytest.approx(np.log10(0.3 / np.sqrt(2)), abs=0.05)


def test_straight_through_codes_pass_the_gradient_to_the_features():
    model = LinguisticModel(tiny_config().linguistic)
    centroids = torch.randn(16, 32)
    model.set_codebook(centroids)
    feats = (centroids[[3, 7, 3]] + 0.01 * torch.randn(3, 32)).requires_grad_(True)
    quantized, commitment = model.straight_through(feats)
    assert torch.allclose(quantized, centroids[[3, 7, 3]]) and 0 < commitment.item() < 1e-3
    quantized.sum().backward()
    assert torch.equal(feats.grad, torch.ones(3, 32))  # the identity: the code's loss reaches the encoder
    assert float(model.straight_through(centroids[:4])[1]) == 0.0
