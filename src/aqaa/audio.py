"""Audio I/O for aqaa: every read and write of audio in the package goes through here.

Conventions: audio in memory is a 1-D mono ``float32`` array in [-1, 1]; the sample rate travels
alongside it as an ``int``. Anything wrong with an input raises :class:`AudioError` whose message
names the source (a path, ``"<array>"`` or ``"<bytes>"``) and the problem.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioError",
    "check_waveform",
    "decode_audio_bytes",
    "encode_flac",
    "lift_quiet",
    "load_audio",
    "peak_dbfs",
    "peak_normalize",
    "resample",
    "save_audio",
    "trim_silence",
]

PEAK = 0.95
DEFAULT_MAX_SECONDS = 600.0
# Suffix -> (libsndfile format, subtype) for writing.
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}
# ffmpeg/ffprobe may stall on odd inputs (e.g. a FIFO); never hang the caller forever.
_SUBPROCESS_TIMEOUT_S = 300.0


class AudioError(ValueError):
    """Invalid, unreadable or unsupported audio; the message names the source and the problem."""

    def __init__(self, source: object, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def check_waveform(
    wav: np.ndarray,
    name: str = "<array>",
    max_seconds: float = DEFAULT_MAX_SECONDS,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Validate ``wav`` and return it as contiguous mono float32 (no resampling, scaling or clipping).

    Accepted shapes: 1-D ``(n,)``, or 2-D multichannel where the *shorter* axis is taken as channels,
    so both soundfile's ``(n, channels)`` and torch/librosa's ``(channels, n)`` work; a square array
    is read as ``(n, channels)``. Channels are mixed down by their mean. Integer PCM arrays are scaled
    by their dtype's range (int16 32767 -> ~1.0). ``sample_rate`` is only used for the duration limit.
    Raises :class:`AudioError` for non-numeric data, bad shape, no samples, NaN/inf, or a duration
    above ``max_seconds``.
    """
    arr = np.asarray(wav)
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        # Unsigned PCM is offset-binary: centre it before scaling.
        offset = (int(info.max) + 1) // 2 if arr.dtype.kind == "u" else 0
        arr = (arr.astype(np.float64) - offset) / (int(info.max) - offset + 1)
    elif arr.dtype.kind != "f":
        raise AudioError(name, f"unsupported sample dtype {arr.dtype} (need float or integer PCM)")
    if arr.ndim == 2:
        channel_axis = 0 if arr.shape[0] < arr.shape[1] else 1
        if arr.size:
            arr = arr.mean(axis=channel_axis, dtype=np.float64)
        else:
            arr = arr.reshape(-1)
    elif arr.ndim != 1:
        raise AudioError(name, f"expected 1-D or 2-D audio array, got shape {arr.shape}")
    if arr.size == 0:
        raise AudioError(name, "zero-length audio (0 samples)")
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(arr.size - finite.sum()) - n_nan
        raise AudioError(name, f"non-finite samples ({n_nan} NaN, {n_inf} inf)")
    if sample_rate <= 0:
        raise AudioError(name, f"invalid sample rate {sample_rate}")
    duration = arr.size / sample_rate
    if duration > max_seconds:
        raise AudioError(name, f"too long: {duration:.1f} s exceeds the limit of {max_seconds:g} s")
    return np.ascontiguousarray(arr, dtype=np.float32)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float32 waveform with soxr's HQ filter (returned unchanged if rates match).

    soxr directly, not through librosa: librosa's first resample imports scipy.signal (seconds).
    """
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def peak_normalize(wav: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale ``wav`` so its largest absolute sample is ``peak``; all-zero audio is returned as is."""
    current = float(np.max(np.abs(wav)))
    if current == 0.0:
        return wav  # digital silence is valid audio; leave it alone rather than divide by zero
    # float64 scale so that a denormal-level peak cannot overflow float32 to inf.
    return (wav.astype(np.float64) * (peak / current)).astype(np.float32)


def peak_dbfs(wav: np.ndarray) -> float:
    """The largest absolute sample in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def lift_quiet(wav: np.ndarray, below_dbfs: float, to_dbfs: float) -> tuple[np.ndarray, float]:
    """``wav`` scaled so that it peaks at ``to_dbfs`` when it peaks below ``below_dbfs`` (else as is), and the
    gain applied in dB (0.0 when untouched). Digital silence stays untouched."""
    if to_dbfs < below_dbfs:
        raise ValueError(f"to_dbfs ({to_dbfs}) must not be below below_dbfs ({below_dbfs})")
    level = peak_dbfs(wav)
    if level >= below_dbfs or level == -math.inf:
        return wav, 0.0
    gain_db = to_dbfs - level
    return (wav.astype(np.float64) * 10 ** (gain_db / 20)).astype(np.float32), gain_db


def trim_silence(wav: np.ndarray, sample_rate: int, below_peak_db: float, keep_lead_s: float,
                 keep_trail_s: float, frame_s: float = 0.01) -> tuple[np.ndarray, float, float]:
    """``wav`` with its leading and trailing near-silence (``frame_s`` frames whose RMS is more than
    ``below_peak_db`` under the peak) cut to at most ``keep_lead_s`` and ``keep_trail_s``, and the seconds cut at
    the start and at the end. Audio with nothing above the threshold (digital silence) is returned as is."""
    if below_peak_db <= 0 or keep_lead_s < 0 or keep_trail_s < 0:
        raise ValueError(f"below_peak_db must be > 0 and the kept margins >= 0, got {below_peak_db}, "
                         f"{keep_lead_s}, {keep_trail_s}")
    hop = max(1, round(frame_s * sample_rate))
    frames = len(wav) // hop
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    if frames == 0 or peak == 0.0:
        return wav, 0.0, 0.0
    rms = np.sqrt(np.mean(wav[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1))
    heard = np.flatnonzero(rms > peak * 10 ** (-below_peak_db / 20))
    if len(heard) == 0:
        return wav, 0.0, 0.0
    start = max(0, heard[0] * hop - round(keep_lead_s * sample_rate))
    end = min(len(wav), (heard[-1] + 1) * hop + round(keep_trail_s * sample_rate))
    return wav[start:end], start / sample_rate, (len(wav) - end) / sample_rate


def _read_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Read with libsndfile, checking the header duration before decoding the samples."""
    info = sf.info(str(path))  # raises if libsndfile does not recognise the file
    if info.frames == 0:
        raise AudioError(path, "zero-length audio (0 samples)")
    if info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
        raise AudioError(
            path,
            f"too long: {info.frames / info.samplerate:.1f} s exceeds the limit of {max_seconds:g} s",
        )
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data, int(sr)


def _read_ffmpeg(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Decode via ffprobe (metadata) + ffmpeg (float32 PCM on stdout) for formats libsndfile lacks."""
    probe = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "a:0",
            "-show_entries", "stream=sample_rate,channels:format=duration", "-of", "json", str(path),
        ],
        capture_output=True, timeout=_SUBPROCESS_TIMEOUT_S, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        raise AudioError(path, f"not decodable audio (ffprobe: {_last_line(probe.stderr, path)})")
    meta = json.loads(probe.stdout or b"{}")
    streams = meta.get("streams") or []
    if not streams:
        raise AudioError(path, "no audio stream found")
    try:
        sr = int(streams[0]["sample_rate"])
        channels = int(streams[0]["channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AudioError(path, f"audio stream lacks sample rate/channels ({exc})") from None
    if sr <= 0 or channels <= 0:
        raise AudioError(path, f"invalid audio stream (rate {sr}, channels {channels})")
    duration = float((meta.get("format") or {}).get("duration") or "nan")
    if duration > max_seconds:  # NaN (unknown duration) compares False; the sample count is checked later
        raise AudioError(path, f"too long: {duration:.1f} s exceeds the limit of {max_seconds:g} s")
    # -t caps decoding just past the limit, so a file without a duration header cannot run away.
    cap = f"{max_seconds + 1.0:.3f}" if math.isfinite(max_seconds) else None
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path)]
    if cap is not None:
        cmd += ["-t", cap]
    # Pin rate and channel count to the probed values so the raw stream layout is what we reshape to.
    cmd += ["-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(sr)]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=_SUBPROCESS_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise AudioError(path, f"not decodable audio (ffmpeg: {_last_line(proc.stderr, path)})")
    raw = np.frombuffer(proc.stdout, dtype="<f4")
    raw = raw[: raw.size - raw.size % channels]
    return raw.reshape(-1, channels).astype(np.float32), sr


def _last_line(stderr: bytes, path: Path) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    line = lines[-1] if lines else "unknown error"
    # ffmpeg prefixes messages with the input path, which AudioError already names.
    return line.removeprefix(f"{path}: ")


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    *,
    normalize: bool = True,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> np.ndarray:
    """Load an audio file as mono float32 in [-1, 1] at ``sample_rate``.

    wav/flac/ogg/mp3 are read with soundfile; other containers (m4a, ...) are decoded with the
    ``ffmpeg`` binary when it is installed. Channels are averaged, audio is resampled with soxr_hq,
    and, if ``normalize``, scaled to a 0.95 peak (all-zero audio is returned unscaled).
    Raises :class:`AudioError` for a missing path, a directory, an empty or undecodable file,
    zero samples, NaN/inf samples, or a duration above ``max_seconds``.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    if sample_rate <= 0:
        raise AudioError(p, f"invalid target sample rate {sample_rate}")

    try:
        data, sr = _read_soundfile(p, max_seconds)
    except (sf.SoundFileError, RuntimeError) as exc:
        sf_problem = str(exc).replace(f"Error opening {str(p)!r}: ", "")
        if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
            raise AudioError(
                p, f"not a readable audio file (soundfile: {sf_problem}; ffmpeg not available)"
            ) from None
        data, sr = _read_ffmpeg(p, max_seconds)

    wav = check_waveform(data, name=str(p), max_seconds=max_seconds, sample_rate=sr)
    wav = resample(wav, sr, sample_rate)
    if normalize:
        wav = peak_normalize(wav)
    # Float files may exceed full scale and resampling can overshoot slightly; honour the [-1, 1] contract.
    return np.clip(wav, -1.0, 1.0, out=wav)


def _to_pcm_range(wav: np.ndarray, name: str) -> np.ndarray:
    # libsndfile wraps (rather than clips) out-of-range floats when writing integer PCM, so clip first.
    return np.clip(check_waveform(wav, name=name, max_seconds=math.inf), -1.0, 1.0)


def save_audio(path: str | os.PathLike[str], wav: np.ndarray, sample_rate: int) -> None:
    """Atomically write mono audio to ``path`` (.wav as 16-bit PCM, or .flac), creating parent dirs.

    Multichannel input is mixed down (see :func:`check_waveform`); samples are clipped to [-1, 1].
    The data goes to a temporary file in the same directory that is then ``os.replace``-d into place,
    so readers never see a half-written file.
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise AudioError(p, f"unsupported output format {p.suffix!r} (use .wav or .flac)")
    if sample_rate <= 0:
        raise AudioError(p, f"invalid sample rate {sample_rate}")
    data = _to_pcm_range(wav, str(p))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        sf.write(str(tmp), data, sample_rate, format=fmt[0], subtype=fmt[1])
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_flac(wav: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono audio as 16-bit FLAC bytes (the corpus storage format)."""
    if sample_rate <= 0:
        raise AudioError("<array>", f"invalid sample rate {sample_rate}")
    buf = io.BytesIO()
    sf.write(buf, _to_pcm_range(wav, "<array>"), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_audio_bytes(data: bytes, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode in-memory audio (FLAC/WAV/OGG/... bytes) to ``(mono float32, sample_rate)``.

    Resamples only when ``sample_rate`` is given and differs from the stored rate; no peak
    normalisation, so stored audio round-trips unchanged.
    """
    name = "<bytes>"
    if not data:
        raise AudioError(name, "empty input (0 bytes)")
    try:
        arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(name, f"not decodable audio (soundfile: {exc})") from None
    wav = check_waveform(arr, name=name, max_seconds=math.inf, sample_rate=int(sr))
    if sample_rate is not None and sample_rate != sr:
        if sample_rate <= 0:
            raise AudioError(name, f"invalid target sample rate {sample_rate}")
        wav = resample(wav, int(sr), sample_rate)
        sr = sample_rate
    return wav, int(sr)
