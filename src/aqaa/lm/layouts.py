"""How the assistant's answer lays out its text ids and its interleaved audio ids in one token stream.

Layouts (audio is always emitted in whole groups of 2 linguistic + 3 semantic ids, 120 ms each):

- `ratio_T_A` (`ratio_10_15` is the default; also `ratio_3_5`, `ratio_6_50`): T text tokens, then A audio
  tokens (A a multiple of the group size), repeated. When the text runs out `<|text_end|>` follows its last
  token and the audio goes on alone; when the audio runs out first (a short or missing audio block) the text
  goes on alone.
- `audio_only`: `<|text_end|>` first (so the parser and the generator know there is no text), then audio.
- `text_cot`: all the text, `<|text_end|>`, then all the audio.
- `text_only`: the text and `<|text_end|>`, no audio (the text model of the cascade baseline).
- `aligned`: each word's text just before the audio group in which the word starts; words starting after the
  last group go at the end.

In every layout `<|text_end|>` comes exactly once, right after the last text token (first, if there is no
text), and the answer ends with `<|EOT|>` at a group boundary after `<|text_end|>`.

All the rules live in one state machine, `LayoutState`: the encoder checks its output with it, the parser
reads through it, and the generator asks it which ids may come next (`allowed`, `mask`). So whatever the
machine accepts parses, and whatever the encoder writes the machine accepts.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from aqaa.codec.interleave import deinterleave
from aqaa.data.align import WordTime
from aqaa.vocab import ROLES, TOKEN_KINDS, Vocabulary

GROUP_SECONDS = 0.12  # audio covered by one group: group k covers [k * 0.12, (k + 1) * 0.12) s
DEFAULT_LAYOUT = "ratio_10_15"
LAYOUT_KINDS = ("ratio", "audio_only", "text_cot", "aligned", "text_only")

WordStart = float | WordTime | tuple[float, float]  # a word's start: seconds, a WordTime, or (start, end)
Word = tuple[Sequence[int], WordStart]  # one word of an aligned answer: its text ids and when it starts
Ids = Sequence[int] | torch.Tensor


class Next(enum.Flag):
    """Kinds of ids that may come next in an answer."""

    NONE = 0
    TEXT = enum.auto()
    TEXT_END = enum.auto()
    LINGUISTIC = enum.auto()
    SEMANTIC = enum.auto()
    EOT = enum.auto()

    def describe(self) -> str:
        names = [f.name.lower() for f in Next if f and f in self]
        return " or ".join(names) if names else "nothing (the answer has ended)"


@dataclass(frozen=True)
class Layout:
    name: str
    kind: str  # one of LAYOUT_KINDS
    text_tokens: int = 0  # ratio: text tokens per block
    audio_tokens: int = 0  # ratio: audio tokens per block, a whole number of groups
    per_group: tuple[int, int] = (2, 3)  # linguistic, semantic ids per group

    def __post_init__(self) -> None:
        if self.kind not in LAYOUT_KINDS:
            raise ValueError(f"unknown layout kind {self.kind!r}; known: {LAYOUT_KINDS}")
        if min(self.per_group) < 0 or sum(self.per_group) == 0:
            raise ValueError(f"per_group {self.per_group} must be non-negative and not both 0")
        if self.kind == "ratio":
            if self.text_tokens < 1 or self.audio_tokens < 1:
                raise ValueError(f"layout {self.name}: a ratio needs at least 1 text and 1 audio token per block")
            if self.audio_tokens % self.group_size:
                raise ValueError(f"layout {self.name}: {self.audio_tokens} audio tokens per block is not a whole "
                                 f"number of {self.group_size}-token groups")

    @property
    def group_size(self) -> int:
        return sum(self.per_group)

    @classmethod
    def ratio(cls, text_tokens: int, audio_tokens: int, per_group: tuple[int, int] = (2, 3)) -> Layout:
        return cls(f"ratio_{text_tokens}_{audio_tokens}", "ratio", text_tokens, audio_tokens, per_group)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (Layout.ratio(10, 15), Layout.ratio(3, 5), Layout.ratio(6, 50), Layout("audio_only", "audio_only"),
                   Layout("text_cot", "text_cot"), Layout("aligned", "aligned"), Layout("text_only", "text_only"))
}


def get_layout(layout: str | Layout) -> Layout:
    """A layout by name (any `ratio_T_A` works, not only the registered ones), or the layout itself."""
    if isinstance(layout, Layout):
        return layout
    if layout in LAYOUTS:
        return LAYOUTS[layout]
    m = re.fullmatch(r"ratio_(\d+)_(\d+)", layout)
    if m:
        return Layout.ratio(int(m[1]), int(m[2]))
    raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)} (or any ratio_T_A)")


class LayoutState:
    """Where an answer stands under a layout: which ids may come next, and moving on by one id."""

    def __init__(self, layout: str | Layout, vocab: Vocabulary) -> None:
        self.layout, self.vocab = get_layout(layout), vocab
        self.text_ended = False
        self.audio_ended = False  # ratio only: an audio block came up short, or text came where audio was due
        self.done = False
        self.group_pos = 0  # ids of the current audio group already emitted (0: at a group boundary)
        self.block = "text"  # ratio: the current block, "text" or "audio"
        self.block_count = 0  # ratio: tokens in the current block
        self.last = Next.NONE  # kind of the previous id (NONE at the start)
        self.n_text = self.n_audio = self.length = 0

    def copy(self) -> LayoutState:
        new = LayoutState.__new__(LayoutState)
        new.__dict__.update(self.__dict__)
        return new

    @property
    def at_group_boundary(self) -> bool:
        return self.group_pos == 0

    def classify(self, token_id: int) -> Next:
        """The kind of an id as the machine sees it; NONE for specials that never appear in an answer."""
        kind = self.vocab.kind(token_id)
        if kind == "text":
            return Next.TEXT
        if kind == "linguistic":
            return Next.LINGUISTIC
        if kind == "semantic":
            return Next.SEMANTIC
        return {self.vocab.text_end: Next.TEXT_END, self.vocab.eot: Next.EOT}.get(int(token_id), Next.NONE)

    def allowed(self) -> Next:
        """The kinds of id that may come next."""
        if self.done:
            return Next.NONE
        n_l, _ = self.layout.per_group
        if self.group_pos:  # inside a group: its pattern decides
            return Next.LINGUISTIC if self.group_pos < n_l else Next.SEMANTIC
        audio = Next.LINGUISTIC if n_l else Next.SEMANTIC
        if self.text_ended:
            return Next.EOT if self.audio_ended or self.layout.kind == "text_only" else audio | Next.EOT
        text_end = Next.TEXT_END if self.last in (Next.NONE, Next.TEXT) else Next.NONE
        kind = self.layout.kind
        if kind == "audio_only":
            return Next.TEXT_END
        if kind in ("text_cot", "text_only"):
            return Next.TEXT | text_end
        if kind == "aligned":
            return Next.TEXT | audio | text_end
        if self.audio_ended:  # ratio, the audio has run out: text alone
            return Next.TEXT | text_end
        if self.block == "text":
            return Next.TEXT | text_end | (audio if self.block_count >= self.layout.text_tokens else Next.NONE)
        if self.block_count < self.layout.audio_tokens:  # a short audio block may end (the audio ran out)
            return audio | Next.TEXT
        return Next.TEXT

    def allows(self, token_id: int) -> bool:
        kind = self.classify(token_id)
        return bool(kind) and kind in self.allowed()

    def mask(self) -> torch.Tensor:
        """Bool tensor [vocab.size]: True where the id may come next."""
        return self.mask_of(self.allowed())

    def mask_of(self, kinds: Next) -> torch.Tensor:
        v = self.vocab
        mask = torch.zeros(v.size, dtype=torch.bool)
        for flag, kind in ((Next.TEXT, "text"), (Next.LINGUISTIC, "linguistic"), (Next.SEMANTIC, "semantic")):
            if flag in kinds:
                r = v.kind_range(kind)
                mask[r.start:r.stop] = True
        if Next.TEXT_END in kinds:
            mask[v.text_end] = True
        if Next.EOT in kinds:
            mask[v.eot] = True
        return mask

    def advance(self, token_id: int) -> Next:
        """Take one id; ValueError if it may not come here. Returns its kind."""
        token_id = int(token_id)
        kind, allowed = self.classify(token_id), self.allowed()
        if not kind or kind not in allowed:
            raise ValueError(f"layout {self.layout.name}: {self.vocab.token_string(token_id)!r} (id {token_id}) may "
                             f"not come at answer position {self.length}; expected {allowed.describe()}")
        layout = self.layout
        if kind == Next.TEXT:
            if layout.kind == "ratio" and not self.audio_ended:
                if self.block == "audio":
                    self.audio_ended = self.block_count < layout.audio_tokens
                    self.block, self.block_count = "text", 0
                elif self.block_count >= layout.text_tokens:  # text where an audio block was due
                    self.audio_ended = True
            self.block_count += 1
            self.n_text += 1
        elif kind in Next.LINGUISTIC | Next.SEMANTIC:
            if self.group_pos == 0 and self.block == "text" and not self.text_ended:
                self.block, self.block_count = "audio", 0
            self.block_count += 1
            self.group_pos = (self.group_pos + 1) % layout.group_size
            self.n_audio += 1
        elif kind == Next.TEXT_END:
            self.text_ended = True
        else:
            self.done = True
        self.last = kind
        self.length += 1
        return kind

    def feed(self, ids: Iterable[int]) -> None:
        for token_id in ids:
            self.advance(int(token_id))


def _as_list(ids: Ids | None) -> list[int]:
    if ids is None:
        return []
    if isinstance(ids, torch.Tensor):
        return [int(i) for i in ids.reshape(-1).tolist()]
    return [int(i) for i in ids]


def _check_audio(vocab: Vocabulary, audio_ids: Ids | None, layout: Layout) -> list[int]:
    audio = _as_list(audio_ids)
    deinterleave(torch.tensor(audio, dtype=torch.long), vocab.audio, layout.per_group)  # raises if malformed
    return audio


def _check_text(vocab: Vocabulary, text_ids: Ids | None) -> list[int]:
    text = _as_list(text_ids)
    bad = [i for i in text if not 0 <= i < vocab.text_size]
    if bad:
        raise ValueError(f"not text ids (text is [0, {vocab.text_size})): {bad[:8]}")
    return text


def word_start(start: WordStart) -> float:
    if isinstance(start, WordTime):
        return start.start
    if isinstance(start, tuple):
        return float(start[0])
    return float(start)


def aligned_words(vocab: Vocabulary, text: str, word_times: Sequence[WordTime]) -> list[tuple[list[int], float]]:
    """The (text ids, start seconds) of each word of `text` for the aligned layout, from flite's word times.
    The ids concatenate to `vocab.encode_text(text)`."""
    per_word = vocab.encode_words(text, [w.word for w in word_times])
    return [(ids, w.start) for ids, w in zip(per_word, word_times, strict=True)]


def encode_aligned(vocab: Vocabulary, words: Sequence[Word], audio_ids: Ids | None,
                   group_seconds: float = GROUP_SECONDS, layout: str | Layout = "aligned") -> list[int]:
    """The aligned layout: each word's ids right before the group its start falls in (start times that go
    backwards are held at the previous word's group, so the word order is kept)."""
    layout = get_layout(layout)
    if layout.kind != "aligned":
        raise ValueError(f"encode_aligned needs an aligned layout, got {layout.name}")
    if group_seconds <= 0:
        raise ValueError(f"group_seconds must be positive, got {group_seconds}")
    audio = _check_audio(vocab, audio_ids, layout)
    g = layout.group_size
    n_groups = len(audio) // g
    slots: list[list[int]] = [[] for _ in range(n_groups + 1)]  # the last slot: after the last group
    group = 0
    for ids, start in words:
        group = max(group, math.floor(word_start(start) / group_seconds + 1e-9))
        slots[min(group, n_groups)] += _check_text(vocab, ids)
    total = sum(len(s) for s in slots)
    out, emitted = [], 0
    if total == 0:
        out.append(vocab.text_end)
    for k, slot in enumerate(slots):
        out += slot
        emitted += len(slot)
        if slot and emitted == total:
            out.append(vocab.text_end)
        out += audio[k * g:(k + 1) * g]
    out.append(vocab.eot)
    LayoutState(layout, vocab).feed(out)
    return out


def encode_answer(vocab: Vocabulary, text_ids: Ids | None, audio_ids: Ids | None,
                  layout: str | Layout = DEFAULT_LAYOUT, *, words: Sequence[Word] | None = None,
                  group_seconds: float = GROUP_SECONDS) -> list[int]:
    """The answer's ids in `layout`, ending with `<|EOT|>`. `audio_ids` are interleaved ids of whole groups.
    The aligned layout needs `words` ((text ids, start) per word; `text_ids` may then be None, or must equal
    their concatenation); other layouts take `text_ids` or, failing that, the concatenated `words`.
    `audio_only` drops the text."""
    layout = get_layout(layout)
    if words is not None:
        joined = [int(i) for ids, _ in words for i in ids]
        if text_ids is not None and _as_list(text_ids) != joined:
            raise ValueError("text_ids differ from the concatenated word ids")
        text_ids = joined
    if layout.kind == "aligned":
        if words is None:
            raise ValueError("the aligned layout needs words: (text ids, start seconds) per word")
        return encode_aligned(vocab, words, audio_ids, group_seconds, layout)
    text, audio = _check_text(vocab, text_ids), _check_audio(vocab, audio_ids, layout)
    out: list[int] = []
    if layout.kind == "audio_only":
        out = [vocab.text_end, *audio]
    elif layout.kind == "text_only":
        if audio:
            raise ValueError("the text_only layout has no audio")
        out = [*text, vocab.text_end]
    elif layout.kind == "text_cot":
        out = [*text, vocab.text_end, *audio]
    else:
        t, a = layout.text_tokens, layout.audio_tokens
        ti = ai = 0
        if not text:
            out.append(vocab.text_end)
        while ti < len(text):
            out += text[ti:ti + t]
            ti += t
            if ti >= len(text):
                out.append(vocab.text_end)
                break
            out += audio[ai:ai + a]
            ai += a
        out += audio[ai:]
    out.append(vocab.eot)
    LayoutState(layout, vocab).feed(out)
    return out


def parse_answer(vocab: Vocabulary, ids: Ids, layout: str | Layout = DEFAULT_LAYOUT, *,
                 require_end: bool = True) -> tuple[list[int], list[int]]:
    """(text ids, interleaved audio ids) of an answer. ValueError on anything the layout does not allow. With
    `require_end=False` a cut-off answer (no `<|EOT|>`, e.g. generation hit its length limit) parses too, its
    trailing partial group dropped."""
    state = LayoutState(layout, vocab)
    text: list[int] = []
    audio: list[int] = []
    for token_id in _as_list(ids):
        kind = state.advance(token_id)
        if kind == Next.TEXT:
            text.append(token_id)
        elif kind in Next.LINGUISTIC | Next.SEMANTIC:
            audio.append(token_id)
    if not state.done:
        if require_end:
            raise ValueError(f"answer of {state.length} ids is incomplete: no <|EOT|> (expected next: "
                             f"{state.allowed().describe()})")
        audio = audio[:len(audio) - state.group_pos]
    return text, audio


# ---------------------------------------------------------------------------------------------------------------
# Whole dialogues.


@dataclass
class Turn:
    """One turn. Human and system turns: `text` and/or `audio_ids` (audio is wrapped in `<|audio_start|>` …
    `<|audio_end|>`, after the text if both are given). Assistant turns: the answer's text and audio, laid out
    by the dialogue's layout (`words` for the aligned layout), and an optional style marker that goes right
    after the `<|BOT|>assistant\\n` header: part of the prompt, not of the answer."""

    role: str
    text: str | Ids | None = None
    audio_ids: Ids | None = None
    words: Sequence[Word] | None = None
    style: str | None = None


@dataclass
class DialogueLabels:
    """Per-token labels of a dialogue, to choose which tokens count in a loss."""

    kind: torch.Tensor  # long [N]: index into TOKEN_KINDS
    role: torch.Tensor  # long [N]: index into ROLES; -1 outside any turn (e.g. padding)
    answer: torch.Tensor  # bool [N]: an assistant answer (after its header and style marker, up to its <|EOT|>)

    def select(self, kinds: Iterable[str] | None = None, roles: Iterable[str] | None = None,
               answer_only: bool = False) -> torch.Tensor:
        """Bool [N]: tokens of one of `kinds` (None: any), in a turn of one of `roles` (None: any, and tokens
        outside turns too), and in an answer if `answer_only`."""
        mask = torch.ones_like(self.answer)
        if kinds is not None:
            codes = [_index(TOKEN_KINDS, k, "token kind") for k in kinds]
            mask &= torch.isin(self.kind, torch.tensor(codes, dtype=torch.long))
        if roles is not None:
            codes = [_index(ROLES, r, "role") for r in roles]
            mask &= torch.isin(self.role, torch.tensor(codes, dtype=torch.long))
        if answer_only:
            mask &= self.answer
        return mask


def _index(names: Sequence[str], name: str, what: str) -> int:
    if name not in names:
        raise ValueError(f"unknown {what} {name!r}; known: {tuple(names)}")
    return names.index(name)


def segment_labels(vocab: Vocabulary, ids: Ids) -> DialogueLabels:
    """Token kind, turn role and answer membership for every id of a dialogue (padding allowed between and
    after turns). A turn is `<|BOT|>{role}\\n … <|EOT|>`; its `<|BOT|>`, header and `<|EOT|>` carry its role."""
    ids_t = torch.as_tensor(_as_list(ids), dtype=torch.long)
    kind = vocab.kind_codes(ids_t)
    lst = ids_t.tolist()
    role = torch.full((len(lst),), -1, dtype=torch.long)
    answer = torch.zeros(len(lst), dtype=torch.bool)
    current, in_answer, i = -1, False, 0
    assistant = ROLES.index("assistant")
    while i < len(lst):
        token = lst[i]
        if token == vocab.bot:
            if current != -1:
                raise ValueError(f"<|BOT|> at position {i} opens a turn inside the unclosed {ROLES[current]} turn")
            matches = [r for r, name in enumerate(ROLES)
                       if lst[i + 1:i + 1 + len(vocab.role_headers[name])] == vocab.role_headers[name]]
            if not matches:
                raise ValueError(f"<|BOT|> at position {i} is not followed by a role header {ROLES}")
            current = matches[0]
            end = i + 1 + len(vocab.role_headers[ROLES[current]])
            if current == assistant and end < len(lst) and vocab.is_style(lst[end]):
                end += 1
            role[i:end] = current
            in_answer, i = current == assistant, end
            continue
        role[i] = current
        answer[i] = in_answer
        if token == vocab.eot:
            if current == -1:
                raise ValueError(f"<|EOT|> at position {i} closes no turn")
            current, in_answer = -1, False
        i += 1
    return DialogueLabels(kind, role, answer)


def _body(vocab: Vocabulary, turn: Turn, layout: Layout, group_seconds: float) -> list[int]:
    text = vocab.encode_text(turn.text) if isinstance(turn.text, str) else turn.text
    if turn.role == "assistant":
        style = [] if turn.style is None else [vocab.style(turn.style)]
        answer = encode_answer(vocab, text, turn.audio_ids, layout, words=turn.words, group_seconds=group_seconds)
        return [*vocab.turn_header("assistant"), *style, *answer]
    if turn.style is not None or turn.words is not None:
        raise ValueError(f"a {turn.role} turn takes no style or words")
    if text is None and turn.audio_ids is None:
        raise ValueError(f"a {turn.role} turn needs text or audio")
    body = _check_text(vocab, text)
    if turn.audio_ids is not None:
        body += [vocab.audio_start, *_check_audio(vocab, turn.audio_ids, layout), vocab.audio_end]
    return vocab.turn(turn.role, body)


def _turns(vocab: Vocabulary, turns: Sequence[Turn], layout: str | Layout, system: str | Ids | None,
           group_seconds: float) -> list[int]:
    layout = get_layout(layout)
    out: list[int] = []
    if system is not None:
        out += _body(vocab, Turn("system", system), layout, group_seconds)
    for turn in turns:
        if turn.role not in ROLES:
            raise ValueError(f"unknown role {turn.role!r}; known: {ROLES}")
        out += _body(vocab, turn, layout, group_seconds)
    return out


def build_dialogue(vocab: Vocabulary, turns: Sequence[Turn], layout: str | Layout = DEFAULT_LAYOUT,
                   system: str | Ids | None = None,
                   group_seconds: float = GROUP_SECONDS) -> tuple[torch.Tensor, DialogueLabels]:
    """The ids of a whole dialogue (an optional system turn, then `turns`) and their labels."""
    ids = torch.tensor(_turns(vocab, turns, layout, system, group_seconds), dtype=torch.long)
    return ids, segment_labels(vocab, ids)


def build_prompt(vocab: Vocabulary, turns: Sequence[Turn], layout: str | Layout = DEFAULT_LAYOUT,
                 system: str | Ids | None = None, style: str | None = None,
                 group_seconds: float = GROUP_SECONDS) -> list[int]:
    """The generation prompt: the dialogue so far, then `<|BOT|>assistant\\n` and the optional style marker.
    The answer that follows obeys `LayoutState(layout, vocab)`."""
    out = _turns(vocab, turns, layout, system, group_seconds) + vocab.turn_header("assistant")
    return out + ([] if style is None else [vocab.style(style)])
