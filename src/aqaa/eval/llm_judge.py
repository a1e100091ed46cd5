"""An optional LLM judge: any OpenAI-compatible chat endpoint rates each answer with the paper's rubric.

Off by default: the benchmark's own scores need nothing outside this machine. Turned on (`aqaa eval run
--llm-judge`), each scored turn's question, asked style, reference answer and the transcript of the system's
speech go to the endpoint, which returns relevance, factuality and a 1–5 chat score. Replies are cached on disk
by the hash of (model, prompt), so rescoring or rerunning costs no second request.

Configuration: `--llm-judge-url` / AQAA_LLM_JUDGE_URL (a base URL such as http://localhost:8000/v1, or the full
.../chat/completions), `--llm-judge-model` / AQAA_LLM_JUDGE_MODEL, and the key in AQAA_LLM_JUDGE_API_KEY
(sent as a Bearer token when set).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aqaa.checkpoint import write_json

SYSTEM_PROMPT = "You are a strict, fair grader of a spoken dialogue assistant. Reply with JSON only."
RUBRIC = """\
A user spoke to a voice assistant and the assistant answered in speech. Grade the answer.

User's question: {question}
Speaking style the user asked for: {style}
Reference answer (correct content): {reference}
Assistant's spoken answer, as transcribed by speech recognition (recognition errors are possible; do not
penalise a plausible mishearing of the right words): {transcript}

Give three grades:
- relevance: 1 if the answer addresses the user's question, else 0.
- factuality: 1 if the answer's content is correct according to the reference answer, else 0.
- chat: overall quality as a spoken reply, an integer from 1 to 5:
  1 = off topic, empty or unintelligible; 2 = on topic but mostly wrong or unhelpful; 3 = partly right or
  incomplete; 4 = right with small flaws; 5 = right, complete and natural.

Reply with one JSON object and nothing else:
{{"relevance": 0 or 1, "factuality": 0 or 1, "chat": 1 to 5, "reason": "one short sentence"}}"""


class LLMJudgeError(RuntimeError):
    """The endpoint could not be reached or answered with an error."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aqaa" / "llm_judge"


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def parse_grades(content: str) -> dict[str, Any]:
    """The grades from a reply (the first JSON object in it), checked and clipped to their ranges."""
    match = re.search(r"\{.*\}", content, re.DOTALL)
    if match is None:
        raise ValueError(f"no JSON object in the judge's reply: {content[:200]!r}")
    data = json.loads(match.group(0))
    try:
        chat = min(5.0, max(1.0, float(data["chat"])))
        return {"relevance": int(bool(int(data["relevance"]))), "factuality": int(bool(int(data["factuality"]))),
                "chat": chat, "reason": str(data.get("reason", ""))}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the judge's reply lacks a valid grade ({err}): {content[:200]!r}") from None


class LLMJudge:
    """Grades one turn per call; see the module docstring. Callable as `judge(turn_meta, transcript)`."""

    def __init__(self, url: str, model: str, api_key: str | None = None, cache_dir: str | Path | None = None,
                 timeout: float = 120.0) -> None:
        if not url or not model:
            raise ValueError("the LLM judge needs an endpoint URL and a model name (--llm-judge-url, "
                             "--llm-judge-model or AQAA_LLM_JUDGE_URL, AQAA_LLM_JUDGE_MODEL)")
        self.url = _endpoint(url)
        self.model = model
        self.api_key = api_key
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.timeout = timeout
        self.requests = 0  # sent to the endpoint (cache hits excluded)

    @classmethod
    def from_env(cls, url: str | None = None, model: str | None = None,
                 cache_dir: str | Path | None = None) -> LLMJudge:
        return cls(url or os.environ.get("AQAA_LLM_JUDGE_URL", ""),
                   model or os.environ.get("AQAA_LLM_JUDGE_MODEL", ""),
                   os.environ.get("AQAA_LLM_JUDGE_API_KEY"), cache_dir)

    @staticmethod
    def prompt(turn: dict[str, Any], transcript: str) -> str:
        style = turn["answer_style"]
        if style == "sing":
            style = "sing the notes " + " ".join(turn["answer_notes"])
        return RUBRIC.format(question=turn["query_text"], style=style, reference=turn["answer_text"],
                             transcript=transcript or "(silence)")

    def _post(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode(errors="replace")
            raise LLMJudgeError(f"LLM judge at {self.url} answered HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise LLMJudgeError(f"cannot reach the LLM judge at {self.url}: {err}") from None
        except json.JSONDecodeError:
            raise LLMJudgeError(f"LLM judge at {self.url} did not answer with JSON") from None
        try:
            return reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMJudgeError(f"LLM judge at {self.url}: not a chat completion: {str(reply)[:300]}") from None

    def __call__(self, turn: dict[str, Any], transcript: str) -> dict[str, Any]:
        prompt = self.prompt(turn, transcript)
        key = hashlib.sha256(json.dumps([self.model, SYSTEM_PROMPT, prompt]).encode()).hexdigest()
        cached = self.cache_dir / f"{key}.json"
        if cached.is_file():
            return json.loads(cached.read_text())
        content = self._post(prompt)
        try:
            grades = parse_grades(content)
        except ValueError as err:
            return {"relevance": None, "factuality": None, "chat": None, "error": str(err)}  # not cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        write_json(cached, grades)
        return grades
