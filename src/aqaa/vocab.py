"""Where every token id lives. The LM vocabulary is: text tokens, then linguistic audio codes, then semantic
audio codes, then chat/control specials. Audio ids depend only on the text vocabulary's size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers


@dataclass(frozen=True)
class AudioVocab:
    text_size: int = 0  # 0: audio-only ids (linguistic 0 …, then semantic)
    linguistic_size: int = 1024
    semantic_size: int = 4096

    @property
    def linguistic_offset(self) -> int:
        return self.text_size

    @property
    def semantic_offset(self) -> int:
        return self.text_size + self.linguistic_size

    @property
    def end(self) -> int:
        """One past the last audio id; specials start here."""
        return self.semantic_offset + self.semantic_size

    def linguistic_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.linguistic_offset

    def semantic_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.semantic_offset

    def is_linguistic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.linguistic_offset) & (ids < self.semantic_offset)

    def is_semantic(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.semantic_offset) & (ids < self.end)


# ---------------------------------------------------------------------------------------------------------------
# The LM vocabulary: text tokenizer + audio ids + specials.

TOKEN_KINDS = ("text", "linguistic", "semantic", "special")  # kind codes are indices into this tuple
ROLES = ("system", "human", "assistant")  # role codes are indices into this tuple
CONTROL_SPECIALS = ("<|BOT|>", "<|EOT|>", "<|audio_start|>", "<|audio_end|>", "<|text_end|>", "<|pad|>")
META_FILE = "aqaa_vocab.json"
TEXT_TOKENIZER_FILE = "text_tokenizer.json"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|BOT|>{{ message['role'] }}\n{{ message['content'] }}<|EOT|>{% endfor %}"
    "{% if add_generation_prompt %}<|BOT|>assistant\n{% endif %}"
)


def default_styles() -> list[str]:
    """The style marker names: the corpus's answer styles, sorted (imported lazily: aqaa.codec imports us)."""
    from aqaa.data.config import DEFAULT_STYLES

    return sorted(DEFAULT_STYLES)


def linguistic_token(code: int) -> str:
    return f"<|l_{code}|>"


def semantic_token(code: int) -> str:
    return f"<|s_{code}|>"


def style_token(style: str) -> str:
    return f"<|style:{style}|>"


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE tokenizer trained on `texts`. Training is deterministic (ties between equally frequent
    pairs are broken by the pair itself), so the same texts always give the same tokenizer. The vocabulary may
    come out smaller than `vocab_size` when the texts run out of pairs seen `min_frequency` times."""
    if vocab_size < 257:
        raise ValueError(f"vocab_size {vocab_size} is below the 256 byte tokens + 1 a byte-level BPE needs")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer)
    return tok


class Vocabulary:
    """Ids [0, text_size): the text tokenizer's; then `audio` (linguistic, semantic); then the specials, in the
    order of CONTROL_SPECIALS followed by one `<|style:NAME|>` per style. The style list is saved with the
    vocabulary, so adding a style to the corpus later does not move the ids of a saved model.

    `encode_text` is pure text: a string such as "<|EOT|>" in it is spelt with text tokens, never mapped to the
    special, so user text cannot inject control tokens."""

    def __init__(self, text_tokenizer: Tokenizer, linguistic_size: int = 1024, semantic_size: int = 4096,
                 styles: Sequence[str] | None = None) -> None:
        self.text_tokenizer = text_tokenizer
        text_tokenizer.no_padding()
        text_tokenizer.no_truncation()
        text_size = text_tokenizer.get_vocab_size(with_added_tokens=True)
        ids = text_tokenizer.get_vocab(with_added_tokens=True).values()
        if text_size == 0 or len(ids) != text_size or max(ids) != text_size - 1:
            raise ValueError(f"the text tokenizer's ids are not contiguous from 0 ({len(ids)} tokens, "
                             f"largest id {max(ids, default=-1)})")
        if linguistic_size < 1 or semantic_size < 1:
            raise ValueError(f"audio codebook sizes must be positive, got {linguistic_size}, {semantic_size}")
        self.audio = AudioVocab(text_size, linguistic_size, semantic_size)
        self.styles = list(default_styles() if styles is None else styles)
        bad = [s for s in self.styles if not s or "|" in s or s != s.strip()]
        if bad or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"style names must be unique, non-empty and without '|' or edge spaces: {self.styles}")
        self.specials = list(CONTROL_SPECIALS) + [style_token(s) for s in self.styles]
        self._special_ids = {tok: self.audio.end + i for i, tok in enumerate(self.specials)}
        self.role_headers = {role: self.encode_text(f"{role}\n") for role in ROLES}

    # -- sizes and ranges --------------------------------------------------------------------------------------
    @property
    def text_size(self) -> int:
        return self.audio.text_size

    @property
    def special_offset(self) -> int:
        return self.audio.end

    @property
    def size(self) -> int:
        return self.audio.end + len(self.specials)

    def __len__(self) -> int:
        return self.size

    def kind_range(self, kind: str) -> range:
        """The ids of one kind: "text", "linguistic", "semantic" or "special"."""
        a = self.audio
        bounds = {"text": (0, a.text_size), "linguistic": (a.linguistic_offset, a.semantic_offset),
                  "semantic": (a.semantic_offset, a.end), "special": (a.end, self.size)}
        if kind not in bounds:
            raise ValueError(f"unknown token kind {kind!r}; known: {TOKEN_KINDS}")
        return range(*bounds[kind])

    # -- specials ----------------------------------------------------------------------------------------------
    def special(self, name: str) -> int:
        """Id of a special, by token ("<|EOT|>") or bare name ("EOT", "style:happy")."""
        token = name if name.startswith("<|") else f"<|{name}|>"
        if token not in self._special_ids:
            raise ValueError(f"unknown special token {name!r}; known: {', '.join(self.specials)}")
        return self._special_ids[token]

    def style(self, name: str) -> int:
        """Id of the `<|style:NAME|>` marker."""
        if name not in self.styles:
            raise ValueError(f"unknown style {name!r}; known: {', '.join(self.styles)}")
        return self._special_ids[style_token(name)]

    @property
    def bot(self) -> int:
        return self._special_ids["<|BOT|>"]

    @property
    def eot(self) -> int:
        return self._special_ids["<|EOT|>"]

    @property
    def audio_start(self) -> int:
        return self._special_ids["<|audio_start|>"]

    @property
    def audio_end(self) -> int:
        return self._special_ids["<|audio_end|>"]

    @property
    def text_end(self) -> int:
        return self._special_ids["<|text_end|>"]

    @property
    def pad(self) -> int:
        return self._special_ids["<|pad|>"]

    def is_style(self, token_id: int) -> bool:
        return self.special_offset + len(CONTROL_SPECIALS) <= token_id < self.size

    # -- kinds -------------------------------------------------------------------------------------------------
    def _check_id(self, token_id: int) -> int:
        token_id = int(token_id)
        if not 0 <= token_id < self.size:
            raise ValueError(f"token id {token_id} is out of range [0, {self.size})")
        return token_id

    def kind(self, token_id: int) -> str:
        """One of TOKEN_KINDS: "text", "linguistic", "semantic" or "special"."""
        return TOKEN_KINDS[self._kind_code(self._check_id(token_id))]

    def _kind_code(self, token_id: int) -> int:
        a = self.audio
        return (token_id >= a.linguistic_offset) + (token_id >= a.semantic_offset) + (token_id >= a.end)

    def kind_codes(self, ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Vectorised `kind`: a long tensor of indices into TOKEN_KINDS."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.size):
            raise ValueError(f"token ids out of range [0, {self.size}): min {int(ids.min())}, max {int(ids.max())}")
        a = self.audio
        return ((ids >= a.linguistic_offset).long() + (ids >= a.semantic_offset).long()
                + (ids >= a.end).long())

    def token_string(self, token_id: int) -> str:
        """The token's string: a text piece, `<|l_N|>`, `<|s_N|>` or a special."""
        token_id = self._check_id(token_id)
        kind = self.kind(token_id)
        if kind == "text":
            return self.text_tokenizer.id_to_token(token_id)
        if kind == "linguistic":
            return linguistic_token(token_id - self.audio.linguistic_offset)
        if kind == "semantic":
            return semantic_token(token_id - self.audio.semantic_offset)
        return self.specials[token_id - self.special_offset]

    # -- text ----------------------------------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        return self.text_tokenizer.encode(text, add_special_tokens=False).ids

    def decode_text(self, ids: Sequence[int] | torch.Tensor) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.text_size]
        if bad:
            raise ValueError(f"not text ids (text is [0, {self.text_size})): {bad[:8]}")
        return self.text_tokenizer.decode(ids, skip_special_tokens=False)

    def encode_words(self, text: str, words: Sequence[str]) -> list[list[int]]:
        """`encode_text(text)` split into one list per word of `words` (the words as spoken, in order, e.g.
        `WordTime.word`s). Spaces and punctuation go with the word before them (leading ones with the first
        word); a token overlapping two words goes with the first. The lists concatenate to `encode_text(text)`."""
        enc = self.text_tokenizer.encode(text, add_special_tokens=False)
        if not words:
            if enc.ids:
                raise ValueError(f"no words given for non-empty text {text!r}")
            return []
        spans, cursor, folded = [], 0, text.casefold()
        for word in words:
            at = text.find(word, cursor)
            if at < 0:
                at = folded.find(word.casefold(), cursor)
            if at < 0:
                raise ValueError(f"word {word!r} not found in {text!r} after character {cursor}")
            spans.append((at, at + len(word)))
            cursor = at + len(word)
        out: list[list[int]] = [[] for _ in words]
        w = 0
        for token_id, (a, b) in zip(enc.ids, enc.offsets, strict=True):
            j = w
            while j < len(spans) and spans[j][0] < b:  # the first word from w on that the token overlaps
                if a < spans[j][1]:
                    w = j
                    break
                j += 1
            out[w].append(token_id)
        return out

    # -- chat template -------------------------------------------------------------------------------------------
    def turn_header(self, role: str) -> list[int]:
        """`<|BOT|>{role}\\n`: the start of a turn (role name and newline are ordinary text tokens)."""
        if role not in self.role_headers:
            raise ValueError(f"unknown role {role!r}; known: {ROLES}")
        return [self.bot, *self.role_headers[role]]

    def turn(self, role: str, body: Sequence[int]) -> list[int]:
        """A whole turn: `<|BOT|>{role}\\n` body `<|EOT|>`."""
        return [*self.turn_header(role), *(int(i) for i in body), self.eot]

    # -- persistence ---------------------------------------------------------------------------------------------
    def to_hf_tokenizer(self) -> Any:
        """A `transformers.PreTrainedTokenizerFast` whose ids are exactly ours: the text tokenizer with the audio
        tokens (`<|l_N|>`, `<|s_N|>`) and then the specials added."""
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer.from_str(self.text_tokenizer.to_str())
        clash = [t for t in self.specials if tok.token_to_id(t) is not None]
        if clash:
            raise ValueError(f"the text tokenizer already has tokens named like our specials: {clash}")
        audio = [linguistic_token(i) for i in range(self.audio.linguistic_size)]
        audio += [semantic_token(i) for i in range(self.audio.semantic_size)]
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in audio])
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in self.specials])
        for token_id in (self.audio.linguistic_offset, self.audio.semantic_offset, self.special_offset,
                         self.size - 1):
            if tok.token_to_id(self.token_string(token_id)) != token_id:
                raise ValueError(f"token {self.token_string(token_id)!r} would not get id {token_id} in the "
                                 "Hugging Face tokenizer (does the text vocabulary already contain it?)")
        hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|BOT|>", eos_token="<|EOT|>",
                                     pad_token="<|pad|>")
        hf.chat_template = CHAT_TEMPLATE
        return hf

    def save(self, directory: str | Path) -> Path:
        """A standard Hugging Face tokenizer directory (`AutoTokenizer.from_pretrained` maps every token string
        to our id) plus the pure text tokenizer and a small JSON of the sizes and styles."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.to_hf_tokenizer().save_pretrained(str(directory))
        self.text_tokenizer.save(str(directory / TEXT_TOKENIZER_FILE))
        meta = {"format": 1, "text_size": self.text_size, "linguistic_size": self.audio.linguistic_size,
                "semantic_size": self.audio.semantic_size, "styles": self.styles, "specials": self.specials,
                "size": self.size}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Vocabulary:
        directory = Path(directory)
        missing = [f for f in (META_FILE, TEXT_TOKENIZER_FILE) if not (directory / f).is_file()]
        if missing:
            raise ValueError(f"{directory} is not a saved Vocabulary: missing {', '.join(missing)}")
        meta = json.loads((directory / META_FILE).read_text())
        vocab = cls(Tokenizer.from_file(str(directory / TEXT_TOKENIZER_FILE)), meta["linguistic_size"],
                    meta["semantic_size"], meta["styles"])
        if vocab.text_size != meta["text_size"] or vocab.specials != meta["specials"]:
            raise ValueError(f"{directory / META_FILE} does not match its text tokenizer "
                             f"(text size {vocab.text_size} vs {meta['text_size']})")
        return vocab

    @classmethod
    def from_pretrained_text(cls, directory: str | Path, linguistic_size: int = 1024, semantic_size: int = 4096,
                             styles: Sequence[str] | None = None) -> Vocabulary:
        """Bring your own Hugging Face tokenizer: all its ids (added tokens included) become the text part."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"tokenizer directory {directory} does not exist")
        if (directory / "tokenizer.json").is_file():
            tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        else:
            try:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(str(directory), use_fast=True).backend_tokenizer
            except Exception as e:  # any failure here means: not a usable tokenizer directory
                raise ValueError(f"{directory} has no tokenizer.json and transformers could not load a fast "
                                 f"tokenizer from it: {e}") from e
        return cls(tok, linguistic_size, semantic_size, styles)
