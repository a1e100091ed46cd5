"""The vocoder: audio tokens → mel (flow matching) → waveform (neural, or Griffin-Lim as the reference).

Interface (what the LM pipeline, the server and the command line rely on):
  - `synthesize(codes, steps=None, guidance=None, seed=0)` → float32 waveform at `sample_rate`;
  - `stream(...)` → an object whose `push(codes_chunk)` returns the audio ready so far and `flush()` the rest;
    the concatenation equals `synthesize` of all the codes (the offline path is one push and a flush);
  - `mel(codes, ...)` → the generated log-mel; `vocode(mel)` → the neural vocoder alone (copy synthesis);
  - `save(dir)` / `Vocoder.from_pretrained(dir)` (safetensors + config.json, kind `aqaa.vocoder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aqaa.checkpoint import load_model, save_model
from aqaa.codec.mel import MelConfig
from aqaa.codec.tokenizer import Codes
from aqaa.configs import from_dict, to_dict
from aqaa.vocoder.causal import KernelChoice
from aqaa.vocoder.flow import FlowConfig, TokenToMel
from aqaa.vocoder.griffin_lim import griffin_lim
from aqaa.vocoder.layout import TokenLayout
from aqaa.vocoder.mel2wav import Mel2WavConfig, MelToWave
from aqaa.vocoder.stream import VocoderStream

KIND = "aqaa.vocoder"


@dataclass
class VocoderConfig:
    tokens: TokenLayout = field(default_factory=TokenLayout)
    mel: MelConfig = field(default_factory=MelConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    mel2wav: Mel2WavConfig = field(default_factory=Mel2WavConfig)
    tokenizer_sha256: str | None = None  # the weights whose codes the flow learned (`checkpoint.state_fingerprint`)

    def __post_init__(self) -> None:
        if (self.mel.sample_rate, self.mel.hop) != (self.tokens.sample_rate, self.tokens.hop):
            raise ValueError(f"the vocoder's mel ({self.mel.sample_rate} Hz, hop {self.mel.hop}) must share the "
                             f"tokenizer's sample rate and hop ({self.tokens.sample_rate} Hz, hop {self.tokens.hop})")
        stride = self.flow.estimator.stride
        if self.tokens.group_frames % stride:
            raise ValueError(f"estimator stride {stride} must divide a token group ({self.tokens.group_frames} "
                             "frames) so that streamed groups render whole blocks")


class Vocoder(nn.Module):
    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.config = config
        self.flow = TokenToMel(config.tokens, config.mel.n_mels, config.flow)
        self.mel2wav = MelToWave(config.mel, config.mel2wav)
        self.eval()

    @property
    def sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def layout(self) -> TokenLayout:
        return self.config.tokens

    def stream(self, steps: int | None = None, guidance: float | None = None, seed: int = 0,
               audio: bool = True) -> VocoderStream:
        """A streaming synthesiser: `push(Codes)` → new audio (float32), `flush()` → the rest. With
        `audio=False` it only renders mel (its `mel()` method returns what was rendered)."""
        flow = self.config.flow
        return VocoderStream(self, flow.steps if steps is None else steps,
                             flow.guidance if guidance is None else guidance, seed, audio)

    def set_kernel(self, kernel: str) -> None:
        """How inference runs the ConvNeXt blocks, the flow's solver and the stream-sized products: "auto" (C++
        where it builds, else Python with a warning), "cpp" (an error where it does not build) or "python"."""
        for module in self.modules():
            if isinstance(module, KernelChoice):
                module.set_kernel(kernel)

    @torch.inference_mode()
    def synthesize(self, codes: Codes, steps: int | None = None, guidance: float | None = None, seed: int = 0,
                   griffin_lim_iterations: int | None = None) -> np.ndarray:
        """Codes → float32 waveform at `sample_rate` (`steps` 0: the conditioner's prior mel, no flow).
        `griffin_lim_iterations` renders the generated mel with Griffin-Lim (the untrained reference) instead of
        the neural vocoder."""
        if griffin_lim_iterations is not None:
            return griffin_lim(self.mel(codes, steps, guidance, seed), self.config.mel, griffin_lim_iterations)
        stream = self.stream(steps, guidance, seed)
        return np.concatenate([stream.push(codes), stream.flush()])

    @torch.inference_mode()
    def mel(self, codes: Codes, steps: int | None = None, guidance: float | None = None,
            seed: int = 0) -> torch.Tensor:
        """Codes → generated log-mel [T, n_mels]."""
        stream = self.stream(steps, guidance, seed, audio=False)
        stream.push(codes)
        stream.flush()
        return stream.mel()

    @torch.inference_mode()
    def vocode(self, log_mel: torch.Tensor) -> np.ndarray:
        """log-mel [T, n_mels] (of this vocoder's mel config) → float32 waveform, by the neural vocoder."""
        if log_mel.ndim != 2 or log_mel.shape[1] != self.config.mel.n_mels:
            raise ValueError(f"expected a log-mel [frames, {self.config.mel.n_mels}], got {tuple(log_mel.shape)}")
        return self.mel2wav(log_mel.float()[None])[0].numpy()

    def save(self, directory: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Weights + config; `dtype` float16 stores the weights at half the size (computation stays float32)."""
        save_model(directory, self.state_dict(), {"kind": KIND, **to_dict(self.config)}, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Vocoder:
        state, config = load_model(directory)
        if config.pop("kind", None) != KIND:
            raise ValueError(f"{directory} does not hold an aqaa vocoder (config.json kind is not {KIND!r})")
        vocoder = cls(from_dict(VocoderConfig, config, "vocoder config"))
        vocoder.load_state_dict(state)
        return vocoder.eval()
