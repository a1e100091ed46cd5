import base64
import io
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from aqaa.pipeline import SpokenAnswer
from aqaa.serve import serve


@dataclass
class Event:
    kind: str
    text: str = ""
    audio: np.ndarray | None = None
    sample_rate: int = 0
    seconds: float = 0.0


class EchoSystem:
    """A test double: answers with the question's audio reversed and says how many turns it has seen."""

    name = "echo"

    def respond(self, audio, sample_rate, history=(), system=None, seed=None):
        return SpokenAnswer(f"turn {len(history) // 2}", audio[::-1].copy(), sample_rate, {"total": 0.0},
                            {"seen": len(history)})

    def stream(self, audio, sample_rate, history=(), system=None, seed=None):
        if len(audio) < 10:
            raise ValueError("too short")
        yield Event("style", "neutral")
        yield Event("text", f"turn {len(history) // 2}")
        for part in np.array_split(audio, 3):
            yield Event("audio", audio=part, sample_rate=sample_rate)
        self.last = {"seen": len(history)}
        yield Event("end")


@pytest.fixture()
def server():
    srv = serve(EchoSystem(), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def wav_body(seconds=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 220 * t), sr, format="WAV")
    return buffer.getvalue()


def post(url, body, accept=None):
    request = urllib.request.Request(url, data=body, method="POST")
    if accept:
        request.add_header("Accept", accept)
    return urllib.request.urlopen(request, timeout=30)


def test_answer_returns_wav_and_text_and_sessions_keep_history(server):
    with urllib.request.urlopen(server + "/health", timeout=30) as r:
        assert json.load(r) == {"status": "ok", "model": "echo"}
    with post(server + "/v1/answer?session=a", wav_body()) as r:
        assert r.headers["Content-Type"] == "audio/wav" and r.headers["X-Aqaa-Text"] == "turn%200"
        wav, sr = sf.read(io.BytesIO(r.read()))
        assert sr == 16000 and len(wav) == 8000
    with post(server + "/v1/answer?session=a", wav_body(), accept="application/json") as r:
        data = json.load(r)
    assert data["text"] == "turn 1"  # the session remembered the first question and answer
    assert sf.read(io.BytesIO(base64.b64decode(data["audio_wav_base64"])))[1] == 16000
    with post(server + "/v1/answer?session=b", wav_body(), accept="application/json") as r:
        assert json.load(r)["text"] == "turn 0"
    request = urllib.request.Request(server + "/v1/session/a", method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as r:
        assert json.load(r) == {"deleted": True}


def test_stream_sends_events_as_ndjson(server):
    with post(server + "/v1/answer/stream", wav_body()) as r:
        events = [json.loads(line) for line in r.read().decode().splitlines()]
    assert [e["type"] for e in events] == ["style", "text", "audio", "audio", "audio", "end"]
    pcm = b"".join(base64.b64decode(e["pcm16_base64"]) for e in events if e["type"] == "audio")
    assert len(pcm) == 2 * 8000


@pytest.mark.parametrize("path,body,status,words", [
    ("/v1/answer", b"", 400, "no body"),
    ("/v1/answer", b"not audio at all", 400, "not usable audio"),
    ("/v1/answer?seed=x", b"x", 400, "seed"),
    ("/v1/nothing", b"x", 404, "no such endpoint"),
])
def test_bad_requests_get_clear_errors(server, path, body, status, words):
    with pytest.raises(urllib.error.HTTPError) as err:
        post(server + path, body)
    assert err.value.code == status and words in json.load(err.value)["error"]


def test_stream_errors_before_any_event_are_4xx(server):
    short = io.BytesIO()
    sf.write(short, np.zeros(5), 16000, format="WAV")
    with pytest.raises(urllib.error.HTTPError) as err:
        post(server + "/v1/answer/stream", short.getvalue())
    assert err.value.code == 400 and "too short" in json.load(err.value)["error"]
