"""The crude reference codec the vocoder issue measures against: k-means over stacked log-mel frames.

Every `frames` consecutive log-mel frames (4 × 10 ms = 40 ms: 25 Hz, the semantic stream's rate) are one
vector, quantised to the nearest of `codebook_size` centroids fitted by k-means on training speech; decoding
looks the centroids back up. It learns nothing beyond k-means and sees the mel directly, so it shows how much
of the speech a 25 Hz, 4096-code stream can carry when the codes are chosen for the spectrum alone. The
learned tokens must also name phones for the LM, which this codec's codes do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file

from aqaa.checkpoint import save_tensors
from aqaa.codec.kmeans import kmeans
from aqaa.codec.stable import nearest


class CrudeCodec:
    def __init__(self, centroids: torch.Tensor, frames: int) -> None:
        if centroids.ndim != 2 or centroids.shape[1] % frames:
            raise ValueError(f"centroids must be [codes, frames · n_mels] with frames={frames}, "
                             f"got {tuple(centroids.shape)}")
        self.centroids, self.frames = centroids.float(), frames
        self.n_mels = centroids.shape[1] // frames

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [T, n_mels] → codes [T // frames] (a last partial vector is dropped)."""
        if mel.ndim != 2 or mel.shape[1] != self.n_mels:
            raise ValueError(f"expected a log-mel [frames, {self.n_mels}], got {tuple(mel.shape)}")
        return nearest(stack_frames(mel.float(), self.frames), self.centroids)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [N] → log-mel [N · frames, n_mels]."""
        return self.centroids[codes].reshape(-1, self.n_mels)

    def save(self, path: str | Path) -> None:
        save_tensors(path, {"centroids": self.centroids, "frames": torch.tensor(self.frames)})

    @classmethod
    def load(cls, path: str | Path) -> CrudeCodec:
        tensors = load_file(str(path))
        return cls(tensors["centroids"], int(tensors["frames"]))


def stack_frames(mel: torch.Tensor, frames: int) -> torch.Tensor:
    """[T, n_mels] → [T // frames, frames · n_mels]."""
    n = mel.shape[0] // frames
    return mel[: n * frames].reshape(n, frames * mel.shape[1])


def fit_crude_codec(mels: Iterable[torch.Tensor], frames: int = 4, codebook_size: int = 4096,
                    max_vectors: int = 100_000, iters: int = 12, seed: int = 0) -> CrudeCodec:
    """k-means centroids of the stacked frames of `mels` (each [T, n_mels]), from at most `max_vectors`
    vectors drawn evenly over all of them."""
    stacked = torch.cat([stack_frames(m.float(), frames) for m in mels])
    if stacked.shape[0] > max_vectors:
        stacked = stacked[torch.randperm(stacked.shape[0], generator=torch.Generator().manual_seed(seed))
                          [:max_vectors]]
    return CrudeCodec(kmeans(stacked, codebook_size, iters, seed, progress=True), frames)
