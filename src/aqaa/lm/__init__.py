"""The speech language model: one decoder-only LM over text and audio ids. `layouts` defines the token
sequences it reads and writes."""

from aqaa.lm.layouts import (
    DEFAULT_LAYOUT,
    GROUP_SECONDS,
    LAYOUTS,
    DialogueLabels,
    Layout,
    LayoutState,
    Next,
    Turn,
    aligned_words,
    build_dialogue,
    build_prompt,
    encode_aligned,
    encode_answer,
    get_layout,
    parse_answer,
    segment_labels,
)

__all__ = [
    "DEFAULT_LAYOUT", "GROUP_SECONDS", "LAYOUTS", "DialogueLabels", "Layout", "LayoutState", "Next", "Turn",
    "aligned_words", "build_dialogue", "build_prompt", "encode_aligned", "encode_answer", "get_layout",
    "parse_answer", "segment_labels",
]
