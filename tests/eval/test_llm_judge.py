"""The LLM judge's client against a small OpenAI-compatible server started in the test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aqaa.eval.llm_judge import LLMJudge, LLMJudgeError, parse_grades
from aqaa.eval.report import markdown
from aqaa.eval.run import score_run

from .conftest import needs_synth

TURN = {"query_text": "What is the capital of France?", "answer_text": "The capital of France is Paris.",
        "answer_style": "neutral", "answer_notes": []}


class FakeChat(BaseHTTPRequestHandler):
    replies: list = []  # (status, body) to send, in order; the last one repeats
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status, reply = self.replies[min(len(self.received), len(self.replies)) - 1]
        data = json.dumps(reply).encode() if not isinstance(reply, bytes) else reply
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _completion(content):
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


@pytest.fixture
def server():
    FakeChat.replies, FakeChat.received = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_grades_come_back_parsed_and_are_cached(server, tmp_path):
    FakeChat.replies = [(200, _completion('Sure. {"relevance": 1, "factuality": 1, "chat": 5, "reason": "right"}'))]
    judge = LLMJudge(server, "grader-7b", api_key="k3y", cache_dir=tmp_path)
    grades = judge(TURN, "the capital of france is paris")
    assert grades == {"relevance": 1, "factuality": 1, "chat": 5.0, "reason": "right"}
    (request,) = FakeChat.received
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k3y"
    assert request["body"]["model"] == "grader-7b" and request["body"]["temperature"] == 0
    prompt = request["body"]["messages"][-1]["content"]
    assert "What is the capital of France?" in prompt and "the capital of france is paris" in prompt
    assert judge(TURN, "the capital of france is paris") == grades
    assert len(FakeChat.received) == 1 and judge.requests == 1  # the second came from the cache
    judge(TURN, "the capital of france is lyon")
    assert len(FakeChat.received) == 2  # another transcript is another prompt


def test_server_errors_are_clear(server, tmp_path):
    FakeChat.replies = [(500, {"error": "model overloaded"})]
    with pytest.raises(LLMJudgeError, match="HTTP 500.*overloaded"):
        LLMJudge(server, "m", cache_dir=tmp_path)(TURN, "paris")
    with pytest.raises(LLMJudgeError, match="cannot reach"):
        LLMJudge("http://127.0.0.1:9/v1", "m", cache_dir=tmp_path, timeout=2)(TURN, "paris")


def test_an_unreadable_grade_is_reported_and_not_cached(server, tmp_path):
    FakeChat.replies = [(200, _completion("I think it is fine.")),
                        (200, _completion('{"relevance": 0, "factuality": 0, "chat": 9}'))]
    judge = LLMJudge(server, "m", cache_dir=tmp_path)
    first = judge(TURN, "hello")
    assert first["chat"] is None and "no JSON" in first["error"]
    assert judge(TURN, "hello")["chat"] == 5.0  # asked again, and clipped to the 1–5 scale
    assert len(FakeChat.received) == 2


def test_grades_are_validated():
    assert parse_grades('{"relevance": 1, "factuality": 0, "chat": 3}')["chat"] == 3.0
    with pytest.raises(ValueError, match="lacks a valid grade"):
        parse_grades('{"relevance": 1}')


def test_the_judge_needs_an_endpoint_and_a_model(monkeypatch):
    monkeypatch.delenv("AQAA_LLM_JUDGE_URL", raising=False)
    monkeypatch.delenv("AQAA_LLM_JUDGE_MODEL", raising=False)
    with pytest.raises(ValueError, match="needs an endpoint URL and a model"):
        LLMJudge.from_env()
    monkeypatch.setenv("AQAA_LLM_JUDGE_URL", "http://localhost:1/v1/chat/completions")
    monkeypatch.setenv("AQAA_LLM_JUDGE_MODEL", "m")
    assert LLMJudge.from_env().url == "http://localhost:1/v1/chat/completions"


@needs_synth
def test_a_run_can_also_be_graded_by_the_llm_judge(server, reference_run, tiny_bench, tmp_path):
    FakeChat.replies = [(200, _completion('{"relevance": 1, "factuality": 1, "chat": 4, "reason": "ok"}'))]
    report = score_run(tiny_bench, reference_run[0], llm_judge=LLMJudge(server, "m", cache_dir=tmp_path),
                       progress=False)
    assert report["overall"]["llm_chat"] == 4.0
    assert all(s["llm_factuality"] == 100 for s in report["dimensions"].values())
    assert len(FakeChat.received) == report["overall"]["turns"]
    assert "LLM chat" in markdown(report)
