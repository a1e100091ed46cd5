"""Encode throughput of the audio tokenizer (both streams) as a multiple of real time, on this machine.

Speech: flite sentences (about 30 s). Model: models/tokenizer when present, else an untrained tokenizer of the
default size (same arithmetic, same speed). Measured in one process:
  - mel front end alone (the floor every encode pays),
  - offline encode of each utterance (both streams, codes out),
  - streaming encode in 120 ms chunks (what the server does), and its per-chunk latency.
Usage: python bench/tokenizer.py [--model DIR] [--threads N]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from aqaa.codec.tokenizer import AudioTokenizer, TokenizerConfig
from aqaa.data.speech import Prosody, synthesize, voice_from_name
from aqaa.home import system_threads

SENTENCES = [
    "What is seven plus five?", "Seven plus five is twelve.", "Which day comes after Tuesday?",
    "The capital of France is Paris.", "Please say that again, a little more slowly.",
    "The opposite of hot is cold.", "Sing the scale from do up to the high do.",
    "You sound happy today, and you are speaking quite fast.", "Rock, paper, scissors: I choose paper.",
    "Spell the word cat. C, A, T.",
]


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/tokenizer")
    parser.add_argument("--threads", type=int, default=system_threads(),
                        help="CPU threads (default: what the shipped system runs with)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if (Path(args.model) / "model.safetensors").is_file():
        tokenizer, which = AudioTokenizer.from_pretrained(args.model), args.model
    else:
        tokenizer, which = AudioTokenizer(TokenizerConfig()), "untrained default-size tokenizer"
        tokenizer.linguistic.set_codebook(torch.randn(1024, tokenizer.config.linguistic.encoder.channels))
    sr = tokenizer.sample_rate
    voices = ["flite:awb", "flite:slt", "flite:rms", "flite:kal16"]
    wavs = [synthesize(s, voice_from_name(voices[i % 4]), Prosody(), sr).wav for i, s in enumerate(SENTENCES)]
    seconds = sum(len(w) for w in wavs) / sr
    tokenizer.encode(wavs[0])  # warm-up

    def mel_only():
        with torch.inference_mode():
            for w in wavs:
                tokenizer.mel(torch.from_numpy(w)[None])

    def offline():
        for w in wavs:
            tokenizer.encode(w)

    chunk = int(0.12 * sr)
    chunk_times = []

    def streaming():
        for w in wavs:
            stream = tokenizer.stream()
            for i in range(0, len(w), chunk):
                start = time.perf_counter()
                stream.push(w[i:i + chunk])
                chunk_times.append(time.perf_counter() - start)

    mel_s, offline_s, streaming_s = best_of(mel_only), best_of(offline), best_of(streaming)
    params = sum(p.numel() for n, p in tokenizer.named_parameters() if "decoder" not in n and "head" not in n)
    print(f"model: {which} ({params / 1e6:.2f} M encoder parameters, {args.threads} threads)")
    print(f"audio: {len(wavs)} utterances, {seconds:.1f} s")
    print(f"mel_x_realtime: {seconds / mel_s:.0f}")
    print(f"streaming_x_realtime: {seconds / streaming_s:.0f}")
    print(f"streaming_chunk_ms_median: {1000 * float(np.median(chunk_times)):.2f}")
    print(f"offline_over_mel_time: {offline_s / mel_s:.1f}")
    print(f"encode_x_realtime: {seconds / offline_s:.0f}")


if __name__ == "__main__":
    main()
