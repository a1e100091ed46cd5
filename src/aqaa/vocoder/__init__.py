"""Flow-matching vocoder: audio tokens → mel (conditional flow matching) → waveform (Vocos-style or Griffin-Lim)."""

from aqaa.vocoder.layout import CodesError, TokenLayout
from aqaa.vocoder.vocoder import Vocoder, VocoderConfig

__all__ = ["CodesError", "TokenLayout", "Vocoder", "VocoderConfig"]
