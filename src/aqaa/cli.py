"""The `aqaa` command line: verb-named entry points over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from aqaa.eval.commands import add_commands as add_eval_commands
from aqaa.home import system_dir

app = typer.Typer(help="aqaa: end-to-end spoken dialogue toolkit (audio question in, audio answer out).",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Build and inspect spoken question/answer corpora.", no_args_is_help=True)
app.add_typer(data_app, name="data")
train_app = typer.Typer(help="Train models from YAML recipes (resumable: rerun the same command to continue).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")
eval_app = typer.Typer(help="Measure trained models.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
add_eval_commands(eval_app)

DEFAULT_TOKENIZER = Path(__file__).resolve().parents[2] / "models" / "tokenizer"
DEFAULT_VOCODER = Path(__file__).resolve().parents[2] / "models" / "vocoder"

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _run_recipe(module: str, *args: object) -> None:
    """Run `aqaa.recipes.<module>.main(*args)`, turning bad configs and missing inputs into clear errors."""
    import importlib

    try:
        importlib.import_module(f"aqaa.recipes.{module}").main(*args)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))


@data_app.command("build")
def data_build(
    config: Annotated[Path, typer.Argument(help="Corpus config YAML, e.g. configs/data/small.yaml")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default: corpora/<config name>)")] = None,
    workers: Annotated[int, typer.Option(help="Parallel build processes (default: all cores)")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Delete an existing corpus in OUT first")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
) -> None:
    """Synthesise a corpus. Deterministic for a config and seed; an interrupted build resumes when re-run."""
    from aqaa.data.build import CorpusError, build_corpus
    from aqaa.data.config import CorpusConfig
    from aqaa.data.speech import SynthesisError

    try:
        cfg = CorpusConfig.from_yaml(config)
        out_dir = out or Path("corpora") / cfg.name
        manifest = build_corpus(cfg, out_dir, workers=workers or None, progress=not quiet, overwrite=overwrite)
    except (FileNotFoundError, ValueError, CorpusError, SynthesisError) as err:
        _fail(str(err))
    typer.echo(f"built {manifest['examples']} examples ({manifest['hours']:.2f} h of audio) in {out_dir} "
               f"in {manifest['build_seconds_last_run']:.0f} s")
    typer.echo(f"manifest_sha256: {manifest['manifest_sha256']}")


@data_app.command("info")
def data_info(
    corpus: Annotated[Path, typer.Argument(help="A built corpus directory")],
    wer_sample: Annotated[int, typer.Option(help="Answers the ASR judge transcribes (0 to skip)")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Counts per family, dimension, split and voice; hours of audio; the ASR judge's WER on answers."""
    from aqaa.data.corpus import CorpusNotFoundError, judge_sample, summarize

    try:
        info = summarize(corpus)
    except CorpusNotFoundError as err:
        _fail(str(err))
    if wer_sample > 0:
        judged = judge_sample(corpus, n=wer_sample, progress=not as_json)
        info["judge"] = {k: judged[k] for k in ("n", "wer", "per_family")}
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    typer.echo(f"corpus {info['name']}  examples {info['examples']}  manifest {info['manifest_sha256'][:16]}")
    typer.echo(f"hours: query {info['hours']['query']:.2f}  answer {info['hours']['answer']:.2f}")
    for key in ("split", "dimension", "family", "answer_style"):
        typer.echo(f"\n{key}:")
        for name, count in sorted(info[key].items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {name:32s} {count:7d}")
    voices = info["query_voice"]
    typer.echo(f"\nquery voices: {len(voices)} (most used: "
               + ", ".join(f"{v} {c}" for v, c in sorted(voices.items(), key=lambda kv: -kv[1])[:5]) + ")")
    if "judge" in info:
        wer = info["judge"]["wer"]
        shown = "n/a" if wer is None else f"{100 * wer:.1f}%"
        typer.echo(f"\njudge WER on {info['judge']['n']} neutral assistant answers: {shown}")
        for family, result in info["judge"]["per_family"].items():
            typer.echo(f"  {family:32s} {100 * result['wer']:5.1f}%  (n={result['n']})")


@data_app.command("play")
def data_play(
    corpus: Annotated[Path, typer.Argument(help="A built corpus directory")],
    example_id: Annotated[str | None, typer.Option("--id", help="Example id, e.g. c0000012-t0")] = None,
    split: Annotated[str, typer.Option(help="Split to take --index from")] = "test",
    index: Annotated[int, typer.Option(help="Position in the split")] = 0,
    out: Annotated[Path, typer.Option(help="Directory for question.wav and answer.wav")] = Path("out"),
) -> None:
    """Write one example's question and answer audio as wav files and print their text."""
    from aqaa.audio import save_audio
    from aqaa.data.corpus import CorpusNotFoundError, example_audio, find_example

    try:
        example = find_example(corpus, example_id, split=split, index=index)
    except (CorpusNotFoundError, KeyError, IndexError, ValueError) as err:
        _fail(str(err))
    for which, name in (("query", "question"), ("answer", "answer")):
        wav, sr = example_audio(example, which)
        save_audio(out / f"{name}.wav", wav, sr)
    typer.echo(f"example   {example['id']} ({example['family']}, {example['dimension']}, {example['split']})")
    typer.echo(f"question  {example['query_text']!r}  [{example['query_voice']}, {example['query_style']}]")
    typer.echo(f"answer    {example['answer_text']!r}  [{example['answer_voice']}, {example['answer_style']}]")
    typer.echo(f"wrote     {out / 'question.wav'}  {out / 'answer.wav'}")


@train_app.command("tokenizer")
def train_tokenizer(
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. configs/tokenizer/default.yaml")],
    stage: Annotated[list[str] | None, typer.Option(
        help="Run only these stages (cache, linguistic, kmeans, voice_cache, voice_tuning, semantic, semantic_voice_tuning, assemble); "
             "default: every unfinished one")
    ] = None,
) -> None:
    """Train the dual-codebook audio tokenizer (linguistic CTC + k-means, semantic VQ) on a corpus."""
    _run_recipe("train_tokenizer", config, stage)


@train_app.command("lm")
def train_lm(
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. configs/lm/default.yaml")],
    stage: Annotated[list[str] | None, typer.Option(
        help="Run only these stages (vocab, tokens, train, export); default: every unfinished one")] = None,
) -> None:
    """Train the speech LM (vocabulary, token cache, packed task-mix training, export). Multi-GPU:
    `accelerate launch -m aqaa.recipes.train_lm CONFIG`."""
    _run_recipe("train_lm", config, stage)


@train_app.command("vocoder")
def train_vocoder(
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. configs/vocoder/default.yaml")],
    stage: Annotated[list[str] | None, typer.Option(
        help="Run only these stages (cache, voice_cache, mel2wav, codes, flow, assemble); default: every "
             "unfinished one")
    ] = None,
) -> None:
    """Train the vocoder: mel → waveform network, then token → mel flow matching on the tokenizer's codes."""
    _run_recipe("train_vocoder", config, stage)


@app.command("synth")
def synth(
    tokens: Annotated[Path, typer.Argument(help="TOKENS.json as `aqaa tokenize --json` prints it")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output audio (.wav or .flac)")],
    vocoder: Annotated[Path, typer.Option(help="Vocoder directory")] = DEFAULT_VOCODER,
    steps: Annotated[int | None, typer.Option(
        help="Euler steps (default: the vocoder's, 10; 0: the conditioner's prior mel alone, no flow)")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance (default: the vocoder's)")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed")] = 0,
    griffin_lim: Annotated[bool, typer.Option("--griffin-lim", help="Render the mel with Griffin-Lim")] = False,
) -> None:
    """Speak audio tokens: codes (or interleaved audio-only ids) → waveform."""
    from aqaa.audio import AudioError, save_audio
    from aqaa.vocoder import Vocoder
    from aqaa.vocoder.commands import read_tokens

    try:
        model = Vocoder.from_pretrained(vocoder)
        codes = read_tokens(tokens, model.layout)
        wav = model.synthesize(codes, steps, guidance, seed, 32 if griffin_lim else None)
        save_audio(output, wav, model.sample_rate)
    except (AudioError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"wrote {output} ({len(wav) / model.sample_rate:.2f} s)")


@app.command("resynth")
def resynth(
    audio: Annotated[Path, typer.Argument(help="Audio file (wav, flac, mp3, …)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output audio (.wav or .flac)")],
    tokenizer: Annotated[Path, typer.Option(help="Tokenizer directory")] = DEFAULT_TOKENIZER,
    vocoder: Annotated[Path, typer.Option(help="Vocoder directory")] = DEFAULT_VOCODER,
    steps: Annotated[int | None, typer.Option(
        help="Euler steps (default: the vocoder's, 10; 0: the conditioner's prior mel alone, no flow)")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance (default: the vocoder's)")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed")] = 0,
    griffin_lim: Annotated[bool, typer.Option("--griffin-lim", help="Render the mel with Griffin-Lim")] = False,
) -> None:
    """Round trip through the codec: tokenize a recording, then speak its tokens (what the LM's audio sounds like)."""
    from aqaa.audio import AudioError, load_audio, save_audio
    from aqaa.codec.tokenizer import AudioTokenizer
    from aqaa.vocoder import Vocoder
    from aqaa.vocoder.commands import resynthesize

    try:
        model = Vocoder.from_pretrained(vocoder)
        codec = AudioTokenizer.from_pretrained(tokenizer, streams=model.layout.streams)
        wav = load_audio(audio, sample_rate=codec.sample_rate, normalize=False)  # the level is in the codes
        out, timings = resynthesize(wav, codec, model, steps, guidance, seed, 32 if griffin_lim else None)
        save_audio(output, out, model.sample_rate)
    except (AudioError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if timings["gain_db"]:
        typer.echo(f"note: the recording is too quiet for the tokenizer; it was read {timings['gain_db']:.1f} dB "
                   "louder (the output keeps its level)")
    typer.echo(f"wrote {output} ({timings['audio']:.2f} s; tokenize {timings['tokenize']:.2f} s, "
               f"vocode {timings['vocode']:.2f} s)")


@app.command("ablate")
def ablate(
    config: Annotated[Path, typer.Argument(help="Ablation YAML, e.g. configs/ablation/codebooks.yaml")],
    only: Annotated[list[str] | None, typer.Option(help="Run only these variants")] = None,
) -> None:
    """Train LM variants at an equal budget and tabulate their figures (resumable: rerun to continue)."""
    _run_recipe("ablate", config, only)


DEFAULT_SYSTEM = system_dir()
QUESTION_RATE = 16000


def _respond_to(model: Path, question: Path, **kwargs: Any) -> tuple[Any, Any]:
    """Load the system in `model` and answer the recording `question`: (the question's samples, the answer).
    A missing system, unreadable audio or an answer the system refuses is a clear error."""
    from aqaa.audio import load_audio
    from aqaa.pipeline import load_spoken_model

    try:
        system = load_spoken_model(model)
        wav = load_audio(question, QUESTION_RATE, normalize=False)  # the level is kept: the codes carry it
        return wav, system.respond(wav, QUESTION_RATE, **kwargs)
    except (FileNotFoundError, ValueError) as err:  # AudioError is a ValueError
        _fail(str(err))


@app.command("answer")
def answer(
    question: Annotated[Path, typer.Argument(help="The spoken question (wav, flac, mp3, …)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the answer wav")] = Path("out/answer.wav"),
    model: Annotated[Path, typer.Option(help="System directory (config.json names its kind)")] = DEFAULT_SYSTEM,
    system_prompt: Annotated[str | None, typer.Option("--system", help="Optional system prompt text")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: the system's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print text, timings and details as JSON")] = False,
) -> None:
    """Answer a spoken question with a spoken answer: writes the wav and prints what was said."""
    from aqaa.audio import save_audio

    kwargs = {"seed": seed} if seed is not None else {}
    _, result = _respond_to(model, question, system=system_prompt, **kwargs)
    save_audio(out, result.audio, result.sample_rate)
    if as_json:
        extra = {k: v for k, v in result.extra.items() if k != "answer_ids"}
        print(json.dumps({"text": result.text, "wav": str(out), "seconds": len(result.audio) / result.sample_rate,
                          "timings": result.timings, **extra}, indent=1))
    else:
        if result.extra.get("question_gain_db"):
            typer.echo(f"note    the question is too quiet for the tokenizer; it was read "
                       f"{result.extra['question_gain_db']:.1f} dB louder")
        cut = result.extra.get("question_cut_start_s", 0.0), result.extra.get("question_cut_end_s", 0.0)
        if any(cut):
            typer.echo(f"note    silence cut from the question: {cut[0]:.2f} s before it, {cut[1]:.2f} s after it")
        typer.echo(f"answer  {result.text!r}")
        typer.echo(f"wrote   {out} ({len(result.audio) / result.sample_rate:.2f} s)")


@app.command("serve")
def serve_command(
    model: Annotated[Path, typer.Option(help="System directory")] = DEFAULT_SYSTEM,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port)")] = 8000,
) -> None:
    """Serve a spoken dialogue system over HTTP (POST audio to /v1/answer or /v1/answer/stream)."""
    from aqaa.pipeline import load_spoken_model
    from aqaa.serve import serve

    try:
        server = serve(load_spoken_model(model), host, port)
    except (FileNotFoundError, ValueError, OSError) as err:
        _fail(str(err))
    typer.echo(f"serving {model} on http://{server.server_address[0]}:{server.server_address[1]} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


@app.command("tokenize")
def tokenize(
    audio: Annotated[Path, typer.Argument(help="Audio file (wav, flac, mp3, …)")],
    model: Annotated[Path, typer.Option(help="Tokenizer directory")] = DEFAULT_TOKENIZER,
    as_json: Annotated[bool, typer.Option("--json", help="Print each stream's codes and the ids as JSON")] = False,
    streams: Annotated[str | None, typer.Option(help="dual, linguistic or semantic (default: the model's)")] = None,
) -> None:
    """Print the interleaved audio ids of a recording (audio-only ids: linguistic from 0, semantic after them)."""
    from aqaa.audio import AudioError, load_audio
    from aqaa.codec.tokenizer import AudioTokenizer

    try:
        tokenizer = AudioTokenizer.from_pretrained(model, streams=streams)
        sr = tokenizer.sample_rate
        wav = load_audio(audio, sample_rate=sr, normalize=False)  # keep the level: semantic codes carry it
    except (AudioError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    wav, gain_db = tokenizer.lift_quiet(wav)  # as `aqaa answer` reads a question (which also cuts long silences)
    if gain_db:
        typer.echo(f"note: the recording is too quiet for the tokenizer; it was read {gain_db:.1f} dB louder",
                   err=True)
    codes = tokenizer.encode(wav, sr)
    ids = tokenizer.ids(codes)
    if as_json:
        print(json.dumps({"sample_rate": sr, "streams": tokenizer.config.streams, "gain_db": round(gain_db, 2),
                          "linguistic": codes.linguistic.tolist(), "semantic": codes.semantic.tolist(),
                          "ids": ids.tolist()}))
    else:
        print(" ".join(map(str, ids.tolist())))


@app.command("align")
def align_command(
    audio: Annotated[Path, typer.Argument(help="Audio file of one utterance")],
    text: Annotated[str, typer.Argument(help="What is said in it")],
    model: Annotated[Path, typer.Option(help="Tokenizer directory (its linguistic encoder aligns)")] = DEFAULT_TOKENIZER,
    phones: Annotated[bool, typer.Option(help="Also list every phone")] = False,
) -> None:
    """Word (and phone) start/end times of a transcribed recording, by CTC forced alignment. Prints JSON."""
    from dataclasses import asdict

    from aqaa.audio import AudioError, load_audio
    from aqaa.codec.align import AlignmentError, align
    from aqaa.codec.tokenizer import AudioTokenizer

    try:
        tokenizer = AudioTokenizer.from_pretrained(model)
        wav = load_audio(audio, sample_rate=tokenizer.sample_rate, normalize=False)
        phone_times, word_times = align(tokenizer.linguistic, wav, text, tokenizer.sample_rate)
    except (AudioError, AlignmentError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    result: dict = {"words": [asdict(w) for w in word_times]}
    if phones:
        result["phones"] = [asdict(p) for p in phone_times]
    print(json.dumps(result, indent=1))


@eval_app.command("tokenizer")
def eval_tokenizer(
    config: Annotated[Path, typer.Argument(help="The recipe YAML the tokenizer was trained with")],
    model: Annotated[Path | None, typer.Option(help="Tokenizer directory (default: the recipe's output)")] = None,
    out: Annotated[Path | None, typer.Option(help="Report JSON (default: MODEL/report.json)")] = None,
    quick: Annotated[bool, typer.Option(help="Small samples: minutes instead of tens of minutes")] = False,
) -> None:
    """Probe what the tokenizer's codes carry (phones, pitch, energy, rate, speaker), codebook use, alignment."""
    from aqaa.recipes.eval_tokenizer import main as run_eval

    try:
        run_eval(config, model, out, quick)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))


@eval_app.command("vocoder")
def eval_vocoder(
    config: Annotated[Path, typer.Argument(help="The recipe YAML the vocoder was trained with")],
    model: Annotated[Path | None, typer.Option(help="Vocoder directory (default: the recipe's output)")] = None,
    tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer directory (default: the recipe's)")] = None,
    out: Annotated[Path | None, typer.Option(help="Report JSON (default: MODEL/eval_report.json)")] = None,
    quick: Annotated[bool, typer.Option(help="Small samples: minutes instead of tens of minutes")] = False,
    seeds: Annotated[int | None, typer.Option(help="Noise draws pooled per round trip (default 3; 1 if quick)")] =
        None,
) -> None:
    """Round-trip WER and MCD (prior alone, 1/2/4/10 steps, neural vs Griffin-Lim), the codes' phone error rate,
    other voices, streaming vs offline."""
    from aqaa.recipes.eval_vocoder import main as run_eval

    try:
        run_eval(config, model, tokenizer, out, quick, seeds=seeds)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))


DEMO_QUESTION = REPO_ROOT / "assets" / "question.wav"


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Where to write question.wav and answer.wav")] = Path("out"),
    model: Annotated[Path, typer.Option(help="System directory")] = DEFAULT_SYSTEM,
    question: Annotated[Path, typer.Option(help="The spoken question")] = DEMO_QUESTION,
    corpus_config: Annotated[Path, typer.Option(help="Corpus config for the no-model fallback")] =
        REPO_ROOT / "configs" / "data" / "demo.yaml",
) -> None:
    """Answer a bundled spoken question with the shipped model, writing OUT/answer.wav and printing its text."""
    from aqaa.audio import save_audio

    if not (model / "config.json").is_file():
        from aqaa.data.build import build_corpus
        from aqaa.data.config import CorpusConfig

        typer.secho(f"No shipped model in {model}: aqaa cannot answer speech without a trained tokenizer, speech LM "
                    "and vocoder. Instead, building a small corpus and playing back one of its question/answer "
                    "pairs.", fg=typer.colors.YELLOW)
        cfg = CorpusConfig.from_yaml(corpus_config)
        corpus_dir = Path("corpora") / cfg.name
        build_corpus(cfg, corpus_dir, progress=sys.stderr.isatty())
        data_play(corpus_dir, example_id=None, split="test", index=0, out=out)
        return
    wav, result = _respond_to(model, question)
    save_audio(out / "question.wav", wav, QUESTION_RATE)
    save_audio(out / "answer.wav", result.audio, result.sample_rate)
    text = question.with_suffix(".txt")
    typer.echo(f"question  {text.read_text().strip()!r}" if text.is_file() else f"question  {question}")
    typer.echo(f"answer    {result.text!r}  (style {result.extra.get('style')}, "
               f"{len(result.audio) / result.sample_rate:.2f} s of speech, first audio after "
               f"{result.timings.get('first_audio', float('nan')):.2f} s, done in {result.timings['total']:.2f} s)")
    typer.echo(f"wrote     {out / 'question.wav'}  {out / 'answer.wav'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
