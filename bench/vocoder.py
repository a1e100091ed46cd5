"""Real-time factor of the vocoder, tokens → waveform, on this machine (seconds of compute per second of audio).

Model: models/vocoder when present, else a randomly initialised vocoder of configs/vocoder/default.yaml's size
(same arithmetic, same speed; it says which). Codes: random, seeded (the cost does not depend on their values),
ten utterances of 2–4 s. Measured in one process, best of three:
  - offline synthesis at the model's default Euler steps with guidance (the two halves separately too), and at
    the paper's 10 steps when the default differs,
  - the same flow rendered by Griffin-Lim (32 iterations): the baseline the neural vocoder replaces,
  - streaming synthesis in 15-id chunks (3 groups, 360 ms) as the LM emits them, and the latency of the first
    chunk (stream creation included),
  - the same stream on the Python path (`set_kernel("python")`: no C++ block or flow solver), the baseline the
    C++ kernels are measured against.
Targets: RTF ≤ 0.05, first chunk ≤ 50 ms. Default: the shipped system's thread count (one). With other jobs on two cores, two
threads ran 15-30x slower than one (torch's parallel sections wait for the busy core); try --threads 2 on an
idle machine. The load average is printed first: compare figures only at similar loads.
Usage: python bench/vocoder.py [--model DIR] [--threads N]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from aqaa.codec.tokenizer import Codes
from aqaa.home import system_threads
from aqaa.recipes.train_vocoder import load_config
from aqaa.vocoder import Vocoder, VocoderConfig
from aqaa.vocoder.griffin_lim import griffin_lim

PAPER_STEPS = 10
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vocoder" / "default.yaml"


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/vocoder")
    parser.add_argument("--threads", type=int, default=system_threads(),
                        help="CPU threads (default: what the shipped system runs with)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if (Path(args.model) / "model.safetensors").is_file():
        vocoder, which = Vocoder.from_pretrained(args.model), args.model
    else:
        recipe = load_config(DEFAULT_CONFIG)
        torch.manual_seed(0)
        vocoder = Vocoder(VocoderConfig(mel=recipe.mel, flow=recipe.flow, mel2wav=recipe.mel2wav))
        which = "randomly initialised vocoder of configs/vocoder/default.yaml's size"
    layout = vocoder.layout
    g = torch.Generator().manual_seed(0)
    utterances = []
    for groups in torch.randint(17, 34, (10,), generator=g).tolist():  # 2.0–4.0 s each
        utterances.append(Codes(torch.randint(0, layout.linguistic_codebook, (2 * groups,), generator=g),
                                torch.randint(0, layout.semantic_codebook, (3 * groups,), generator=g)))
    seconds = sum(len(c.semantic) * layout.semantic_frames * layout.hop for c in utterances) / layout.sample_rate
    vocoder.synthesize(utterances[0])  # warm-up
    mels = [vocoder.mel(c) for c in utterances]

    def offline():
        for c in utterances:
            vocoder.synthesize(c)

    def offline_paper_steps():
        for c in utterances:
            vocoder.synthesize(c, steps=PAPER_STEPS)

    def flow_only():
        for c in utterances:
            vocoder.mel(c)

    def mel2wav_only():
        for m in mels:
            vocoder.vocode(m)

    def griffin_lim_path():
        for c in utterances:
            griffin_lim(vocoder.mel(c), vocoder.config.mel)

    first_chunks = []

    def streaming():
        first_chunks.clear()
        for c in utterances:
            start = time.perf_counter()
            stream = vocoder.stream()
            for i in range(0, len(c.semantic) // 9 + 1):
                stream.push(Codes(c.linguistic[6 * i: 6 * i + 6], c.semantic[9 * i: 9 * i + 9]))
                if i == 0:
                    first_chunks.append(time.perf_counter() - start)
            stream.flush()

    offline_s, flow_s, mel2wav_s = best_of(offline), best_of(flow_only), best_of(mel2wav_only)
    paper_s = best_of(offline_paper_steps) if vocoder.config.flow.steps != PAPER_STEPS else offline_s
    gl_s = best_of(griffin_lim_path, repeats=1)
    streaming_s = best_of(streaming)
    first_chunk_s = float(np.median(first_chunks))
    vocoder.set_kernel("python")
    python_streaming_s = best_of(streaming)
    vocoder.set_kernel("auto")
    params = sum(p.numel() for p in vocoder.parameters())
    flow = vocoder.config.flow
    print(f"load_average_1min: {os.getloadavg()[0]:.2f}")
    print(f"model: {which} ({params / 1e6:.2f} M parameters, {flow.steps} Euler steps, guidance {flow.guidance}, "
          f"{args.threads} threads)")
    print(f"audio: {len(utterances)} utterances, {seconds:.1f} s")
    print(f"flow_rtf: {flow_s / seconds:.4f}")
    print(f"mel2wav_rtf: {mel2wav_s / seconds:.4f}")
    print(f"griffin_lim_path_rtf: {gl_s / seconds:.4f}")
    print(f"speedup_vs_griffin_lim: {gl_s / offline_s:.1f}")
    print(f"offline_rtf_{PAPER_STEPS}_steps: {paper_s / seconds:.4f}")
    print(f"streaming_rtf_python_path: {python_streaming_s / seconds:.4f}")
    print(f"streaming_speedup_vs_python_path: {python_streaming_s / streaming_s:.2f}")
    print(f"offline_rtf: {offline_s / seconds:.4f}")
    print(f"streaming_rtf: {streaming_s / seconds:.4f}")
    print(f"first_chunk_ms: {1000 * first_chunk_s:.1f}")


if __name__ == "__main__":
    main()
