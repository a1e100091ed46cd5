"""Streaming synthesis: codes arrive chunk by chunk (from the LM: 3 groups = 15 ids = 360 ms); audio leaves as
soon as nothing later can change it.

Per push:
  1. the conditioner embeds the newly covered units and emits the frames whose look-ahead is now complete
     (it lags `lookahead_frames`, 120 ms by default);
  2. whole blocks of those frames (a multiple of the estimator's stride) are rendered to mel by the Euler
     solver, one estimator state per step, noise seeded by absolute frame index (with 0 steps the prior mu
     is the mel: the flow's regression baseline, no sampling);
  3. the mel → waveform stack (lagging its own look-ahead) and the overlap-add release the final samples.
`flush()` pads the ends exactly as an offline pass does, so a stream's concatenated output equals the offline
synthesis of the same codes (offline synthesis is one push and a flush). Frames past the last whole block
(at most stride - 1 frames, 30 ms) are not rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from aqaa.codec.tokenizer import Codes
from aqaa.vocoder.flow import cosine_schedule, frame_noise, solve_euler

if TYPE_CHECKING:
    from aqaa.vocoder.vocoder import Vocoder


class VocoderStream:
    def __init__(self, vocoder: Vocoder, steps: int, guidance: float, seed: int, audio: bool = True) -> None:
        if steps < 0:
            raise ValueError(f"steps must be at least 0 (0: the conditioner's prior alone), got {steps}")
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        self.vocoder, self.steps, self.guidance, self.seed = vocoder, steps, guidance, seed
        flow = vocoder.flow
        self.linguistic = torch.zeros(1, 0, dtype=torch.long)
        self.semantic = torch.zeros(1, 0, dtype=torch.long)
        self.units = 0  # units fed to the conditioner
        self.conditioner_state = flow.conditioner.initial_state(1)
        self.pending_mu = torch.zeros(1, 0, flow.n_mels)  # conditioner frames not yet rendered
        self.pending_features = torch.zeros(1, 0, flow.config.conditioner.features)
        self.rendered = 0  # frames rendered to mel
        self.batch = 2 if guidance > 0 else 1
        self.step_states = [flow.estimator.initial_state(self.batch) for _ in range(steps)]
        times = cosine_schedule(steps).tolist() if steps else []
        self.increments = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        self.step_biases = flow.estimator.step_biases(times[:-1], self.batch)  # each step's time, as fixed biases
        self.solver = flow.estimator.solver() if steps else None  # None: the Python path
        self.wave = vocoder.mel2wav.stream() if audio else None
        self.mel_chunks: list[torch.Tensor] = []
        self.finished = False

    @torch.inference_mode()
    def push(self, codes: Codes) -> np.ndarray:
        """Add a chunk of codes (either stream may be empty); return the new float32 audio (possibly empty)."""
        if self.finished:
            raise RuntimeError("this stream was flushed; start a new one with vocoder.stream()")
        codes = self.vocoder.layout.check(codes, allow_empty=True)
        self.linguistic = torch.cat([self.linguistic, codes.linguistic[None]], dim=1)
        self.semantic = torch.cat([self.semantic, codes.semantic[None]], dim=1)
        conditioner = self.vocoder.flow.conditioner
        available = self.vocoder.layout.frames(self.linguistic.shape[1], self.semantic.shape[1]) // conditioner.unit
        new = available - self.units
        if new <= 0:
            return np.zeros(0, dtype=np.float32)
        x = conditioner.embed(self.linguistic, self.semantic, self.units, new)
        self.units = available
        return self._condition(conditioner.stack(x, self.conditioner_state))

    @torch.inference_mode()
    def flush(self) -> np.ndarray:
        """Render everything left (the end padded as offline); the stream is finished afterwards."""
        if self.finished:
            raise RuntimeError("this stream was already flushed")
        conditioner = self.vocoder.flow.conditioner
        tail = conditioner.stack(torch.zeros(1, conditioner.stack.lookahead, conditioner.config.channels),
                                 self.conditioner_state)
        audio = [self._condition(tail)]
        self.finished = True
        if self.wave is not None:
            audio.append(self.wave.flush().numpy())
        return np.concatenate(audio).astype(np.float32)

    def mel(self) -> torch.Tensor:
        """The log-mel rendered so far [T, n_mels]."""
        return torch.cat(self.mel_chunks, dim=1)[0] if self.mel_chunks else torch.zeros(0, self.vocoder.flow.n_mels)

    def _condition(self, h: torch.Tensor) -> np.ndarray:
        """Conditioner output units [1, U, C] → render the whole blocks now available → new audio."""
        flow = self.vocoder.flow
        mu, features = flow.conditioner.heads(h)
        self.pending_mu = torch.cat([self.pending_mu, mu], dim=1)
        self.pending_features = torch.cat([self.pending_features, features], dim=1)
        count = self.pending_mu.shape[1] // flow.block * flow.block
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        mel = self._render(self.pending_mu[:, :count], self.pending_features[:, :count])
        self.pending_mu, self.pending_features = self.pending_mu[:, count:], self.pending_features[:, count:]
        self.mel_chunks.append(mel)
        if self.wave is None:
            return np.zeros(0, dtype=np.float32)
        return self.wave.push(mel).numpy()

    def _render(self, mu: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Prior and features of frames rendered … rendered + T → log-mel [1, T, n_mels] by guided Euler steps."""
        flow = self.vocoder.flow
        t = mu.shape[1]
        if self.steps == 0:  # no flow: the prior, a regression of the mel on the codes
            self.rendered += t
            return flow.denormalize(mu)
        estimator = flow.estimator
        cond = estimator.condition(mu, features)
        if self.batch == 2:
            null = estimator.null_condition(1, t)
            cond = (torch.cat([cond[0], null[0]]), torch.cat([cond[1], null[1]]))
        w = self.guidance
        x0 = frame_noise(self.seed, self.rendered, t, flow.n_mels)
        self.rendered += t
        if self.solver is not None:  # the same steps in one C++ call
            x = self.solver.render(x0, cond[0].contiguous(), cond[1].contiguous(), self.step_biases,
                                   self.step_states, self.increments, w)
            return flow.denormalize(x)

        def velocity(x: torch.Tensor, time: float, k: int) -> torch.Tensor:
            v, self.step_states[k] = estimator(x.expand(self.batch, -1, -1), self.step_biases[k], cond,
                                               self.step_states[k])
            return v if self.batch == 1 else torch.lerp(v[1:], v[:1], 1 + w)  # (1 + w) v_cond - w v_null

        return flow.denormalize(solve_euler(velocity, x0, self.steps))
