"""Short-time Fourier framing that lines up with the causal log-mel front end, and its overlap-add inverse.

`aqaa.codec.mel.LogMel` gives frame t the `win` samples that end at sample (t + 1) * hop. Every transform here
places frame t by the sample where it starts, `t * hop + first`, so analysis and synthesis of any window length
share one time axis: a frame centred like mel frame t starts at `hop - win_mel / 2 - n / 2` for a window of n.

`OverlapAdd` turns windowed frames back into samples and releases each sample as soon as no later frame can
touch it, so pushing frames in pieces gives exactly the samples of pushing them all at once.
"""

from __future__ import annotations

import torch


def centred_start(hop: int, mel_win: int, n: int) -> int:
    """Start (relative to t * hop) of an n-sample frame centred where mel frame t's window is centred."""
    return hop - mel_win // 2 - n // 2


class OverlapAdd:
    """Windowed frames [B, T, n] (frame t starting at sample t * hop + first) → samples [B, N].

    Each output sample is the window-square-normalised sum of the frames that cover it (the least-squares
    inverse of a windowed STFT). Samples before the first frame or covered by no frame are zero.
    """

    def __init__(self, window: torch.Tensor, hop: int, first: int, batch: int = 1) -> None:
        self.window, self.hop, self.first = window, hop, first
        self.n = len(window)
        self.frames = 0  # frames added so far
        self.done = 0  # samples released so far
        # acc/env cover samples [done, done + len): pending sums of frames and of window squares
        self.acc = window.new_zeros(batch, 0)
        self.env = window.new_zeros(0)
        self.envelopes: dict[int, torch.Tensor] = {}  # frames per push → their summed window squares

    def _envelope(self, t: int) -> torch.Tensor:
        """Sum of the window squares of t consecutive frames (a stream pushes the same t again and again)."""
        if t not in self.envelopes:
            self.envelopes[t] = overlap(self.window.pow(2).expand(1, t, self.n), self.hop)[0]
        return self.envelopes[t]

    def _extend(self, end: int) -> None:
        grow = end - self.done - self.acc.shape[1]
        if grow > 0:
            self.acc = torch.cat([self.acc, self.acc.new_zeros(self.acc.shape[0], grow)], dim=1)
            self.env = torch.cat([self.env, self.env.new_zeros(grow)])

    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """Add windowed frames [B, T, n]; return the samples [B, S] no later frame can change."""
        b, t, n = frames.shape
        if t:
            start = self.frames * self.hop + self.first  # first sample of the first new frame
            span = (t - 1) * self.hop + n
            summed = overlap(frames, self.hop)[:, :span]  # [B, span]
            env = self._envelope(t)[:span]  # [span]
            # Samples before 0 (frames that start before the signal) are dropped.
            lo = max(start, self.done)
            self._extend(start + span)
            self.acc[:, lo - self.done: start + span - self.done] += summed[:, lo - start:]
            self.env[lo - self.done: start + span - self.done] += env[lo - start:]
            self.frames += t
        final = self.frames * self.hop + self.first  # the next frame starts here: samples before it are final
        return self._release(max(final, self.done))

    def flush(self, total: int) -> torch.Tensor:
        """Release everything up to sample `total` (the signal length)."""
        self._extend(total)
        return self._release(total)

    def _release(self, end: int) -> torch.Tensor:
        k = end - self.done
        self._extend(end)
        # Samples near the signal's ends are covered by a window's tail only: bound the gain there.
        out = self.acc[:, :k] / self.env[:k].clamp(min=1e-3)
        self.acc, self.env = self.acc[:, k:], self.env[k:]
        self.done = end
        return out


def overlap(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Sum of frames [B, T, n], frame t shifted by t * hop → [B, (T + r - 1) * hop], r = ceil(n / hop).

    Each frame is cut into r hop-long pieces; piece j of every frame lands j frames later, so the sum is r
    shifted adds of contiguous [B, T * hop] signals (cheap forward and backward, unlike a strided fold).
    """
    b, t, n = frames.shape
    r = -(-n // hop)
    pieces = torch.nn.functional.pad(frames, (0, r * hop - n)).reshape(b, t, r, hop)
    return sum(torch.nn.functional.pad(pieces[:, :, j].reshape(b, t * hop), (j * hop, (r - 1 - j) * hop))
               for j in range(r))


def frames(signal: torch.Tensor, win: int, hop: int, first: int, count: int) -> torch.Tensor:
    """`count` frames [B, count, win] of signal [B, N], frame t = samples [t * hop + first, + win) (zeros outside)."""
    left = max(0, -first)
    right = max(0, (count - 1) * hop + first + win - signal.shape[-1])
    padded = torch.nn.functional.pad(signal, (left, right))
    start = first + left
    return padded[:, start: start + (count - 1) * hop + win].unfold(-1, win, hop)
