import torch

from aqaa.checkpoint import state_fingerprint


def test_state_fingerprint_names_the_weights_exactly():
    state = {"a.weight": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(0)}
    same = {"b": torch.zeros(0), "a.weight": torch.arange(6.0).reshape(2, 3)}  # order does not matter
    assert state_fingerprint(state) == state_fingerprint(same)
    changed = {**state, "a.weight": state["a.weight"] + torch.tensor([[0.0, 0.0, 1e-6], [0.0, 0.0, 0.0]])}
    renamed = {"a.bias": state["a.weight"], "b": state["b"]}
    reshaped = {**state, "a.weight": state["a.weight"].reshape(3, 2)}
    half = {**state, "a.weight": state["a.weight"].half()}
    prints = {state_fingerprint(s) for s in (state, changed, renamed, reshaped, half)}
    assert len(prints) == 5 and all(len(p) == 64 for p in prints)
