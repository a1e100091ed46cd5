"""`aqaa serve`: an HTTP server around any spoken dialogue system (standard library only).

Endpoints (audio bodies may be wav, flac, ogg or mp3; any sample rate; mono or mixed down):
  GET    /health                        {"status": "ok", "model": name}
  POST   /v1/answer?session=ID&seed=N    the answer as audio/wav; its text in the `X-Aqaa-Text` header
                                         (URL-encoded). With `Accept: application/json`: {"text", "audio_wav_base64",
                                         "sample_rate", "timings", "question_gain_db", "question_cut_start_s",
                                         "question_cut_end_s"} (how much louder a question too quiet for the
                                         tokenizer was read, and the silence cut at its ends; 0 when none)
  POST   /v1/answer/stream?session=ID    newline-delimited JSON events as they are made: {"type": "style"|"text"|
                                         "audio"|"end", ...}; audio events carry `pcm16_base64` at `sample_rate`
                                         (streaming needs a system with a `stream` method, e.g. the shipped one)
  DELETE /v1/session/ID                  forget a conversation
A `session` keeps the conversation (earlier questions and answers) on the server, so follow-up questions work.
Requests are answered one at a time (the model is not thread-safe); errors come back as JSON with a 4xx/5xx code.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf

from aqaa.audio import AudioError, decode_audio_bytes
from aqaa.pipeline import SpokenDialogueModel, SpokenTurn

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_SESSIONS = 256


def wav_bytes(wav: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def pcm16(wav: np.ndarray) -> bytes:
    return (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class DialogueServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: SpokenDialogueModel) -> None:
        super().__init__(address, Handler)
        self.model = model
        self.lock = threading.Lock()
        self.sessions: OrderedDict[str, list[SpokenTurn]] = OrderedDict()

    def history(self, session: str | None) -> list[SpokenTurn]:
        if not session:
            return []
        turns = self.sessions.setdefault(session, [])
        self.sessions.move_to_end(session)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return turns


class Handler(BaseHTTPRequestHandler):
    server: DialogueServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass

    # -- helpers ---------------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _query(self) -> tuple[str, dict[str, str]]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}

    def _question(self) -> tuple[np.ndarray, int] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            self._error(400, "the request has no body: send the question's audio (wav, flac, ogg or mp3)")
            return None
        if length > MAX_BODY_BYTES:
            self._error(413, f"the audio is {length} bytes; the limit is {MAX_BODY_BYTES}")
            return None
        try:
            return decode_audio_bytes(self.rfile.read(length))
        except AudioError as err:
            self._error(400, f"the body is not usable audio: {err}")
            return None

    # -- verbs ------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        path, _ = self._query()
        if path == "/health":
            self._json(200, {"status": "ok", "model": getattr(self.server.model, "name", "unknown")})
        else:
            self._error(404, f"no such endpoint: GET {path}")

    def do_DELETE(self) -> None:  # noqa: N802
        path, _ = self._query()
        if path.startswith("/v1/session/"):
            found = self.server.sessions.pop(path.rsplit("/", 1)[1], None) is not None
            self._json(200 if found else 404, {"deleted": found})
        else:
            self._error(404, f"no such endpoint: DELETE {path}")

    def do_POST(self) -> None:  # noqa: N802
        path, params = self._query()
        if path not in ("/v1/answer", "/v1/answer/stream"):
            self._error(404, f"no such endpoint: POST {path}")
            return
        try:
            seed = int(params["seed"]) if "seed" in params else None
        except ValueError:
            self._error(400, f"seed must be an integer, got {params['seed']!r}")
            return
        question = self._question()
        if question is None:
            return
        wav, sr = question
        history = self.server.history(params.get("session"))
        with self.server.lock:
            if path == "/v1/answer":
                self._answer(wav, sr, history, seed)
            else:
                self._stream(wav, sr, history, seed)

    def _answer(self, wav: np.ndarray, sr: int, history: list[SpokenTurn], seed: int | None) -> None:
        try:
            kwargs = {"seed": seed} if seed is not None else {}
            answer = self.server.model.respond(wav, sr, list(history), **kwargs)
        except ValueError as err:
            self._error(400, str(err))
            return
        history += [SpokenTurn("human", wav, sr), SpokenTurn("assistant", answer.audio, answer.sample_rate,
                                                             answer.text, dict(answer.extra))]
        audio = wav_bytes(answer.audio, answer.sample_rate)
        if "application/json" in (self.headers.get("Accept") or ""):
            self._json(200, {"text": answer.text, "sample_rate": answer.sample_rate, "timings": answer.timings,
                             **{k: answer.extra.get(k, 0.0) for k in ("question_gain_db", "question_cut_start_s",
                                                                      "question_cut_end_s")},
                             "audio_wav_base64": base64.b64encode(audio).decode()})
        else:
            self._send(200, audio, "audio/wav", {"X-Aqaa-Text": urllib.parse.quote(answer.text)})

    def _stream(self, wav: np.ndarray, sr: int, history: list[SpokenTurn], seed: int | None) -> None:
        model = self.server.model
        if not hasattr(model, "stream"):
            self._error(501, f"system {getattr(model, 'name', '?')} does not stream; use POST /v1/answer")
            return
        try:
            events: Iterator[Any] = model.stream(wav, sr, list(history), seed=seed)
            first = next(events)  # errors in the question surface before the 200 goes out
        except ValueError as err:
            self._error(400, str(err))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rate, text, chunks = 0, [], []
        for event in _chain(first, events):
            record: dict[str, Any] = {"type": event.kind, "seconds": round(event.seconds, 4)}
            if event.kind in ("style", "text"):
                record["text"] = event.text
                if event.kind == "text":
                    text.append(event.text)
            elif event.kind == "audio":
                chunks.append(event.audio)
                rate = event.sample_rate
                record.update(sample_rate=rate, pcm16_base64=base64.b64encode(pcm16(event.audio)).decode())
            line = (json.dumps(record) + "\n").encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        history += [SpokenTurn("human", wav, sr),
                    SpokenTurn("assistant", audio, rate, "".join(text).strip(), dict(getattr(model, "last", {})))]


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def serve(model: SpokenDialogueModel, host: str = "127.0.0.1", port: int = 8000) -> DialogueServer:
    """A server bound to (host, port); call `serve_forever()` on it (port 0 picks a free port)."""
    return DialogueServer((host, port), model)
