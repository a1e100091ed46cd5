"""The trainer under `accelerate` with two CPU processes (gloo): the LM recipe's loss, handed the trainer's model,
must keep both processes' weights identical while they read different batches."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import run_on_two_cpu_processes

WORKER = """
import sys

import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from aqaa.recipes.train_lm import sequence_losses
from aqaa.trainer import TrainConfig, train

out, loss = sys.argv[1], sys.argv[2]
accelerator = Accelerator()
torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
data = torch.randint(0, 32, (16, 12), generator=torch.Generator().manual_seed(1))


def make_batch(rows):
    ids = data[rows]
    return {"input_ids": ids, "position_ids": torch.arange(12).expand_as(ids), "labels": ids,
            "kinds": torch.zeros_like(ids)}


def epoch_batches(epoch):  # each process its own half, as the LM recipe shares batches out
    plan = [[i, i + 1] for i in range(0, 16, 2)]
    share = len(plan) // accelerator.num_processes
    return plan[accelerator.process_index * share:(accelerator.process_index + 1) * share]


# "bare" is the mistake this guards against: a loss that calls the unwrapped model, bypassing the wrapper's forward.
loss_fn = sequence_losses if loss == "given" else (lambda _, b: sequence_losses(model, b))


def evaluate():  # must run on the main process alone, through the bare model
    open(f"{out}/evaluated_by_rank{accelerator.process_index}", "a").write("x")
    with torch.no_grad():
        return {"loss": float(sequence_losses(model, make_batch([0, 1]))["loss"])}


train(model, loss_fn, epoch_batches, make_batch, TrainConfig(steps=6, lr=1e-2, warmup_steps=1, eval_every=3), out,
      "lm", evaluate, accelerator=accelerator)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{accelerator.process_index}.st")
"""


def _train_on_two_processes(tmp_path: Path, loss: str) -> list[dict[str, torch.Tensor]]:
    script, out = tmp_path / "worker.py", tmp_path / loss
    script.write_text(WORKER)
    out.mkdir()
    run_on_two_cpu_processes([str(script), str(out), loss], timeout=300)
    return [load_file(str(out / f"rank{rank}.st")) for rank in (0, 1)]


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_two_processes_train_one_model(tmp_path):
    first, second = _train_on_two_processes(tmp_path, "given")
    assert all(torch.equal(first[name], second[name]) for name in first)
    # one process evaluated, twice (steps 3 and 6), and its figures are in the log
    assert sorted(p.name for p in (tmp_path / "given").glob("evaluated_by_*")) == ["evaluated_by_rank0"]
    assert (tmp_path / "given" / "evaluated_by_rank0").read_text() == "xx"
    log = [json.loads(line) for line in (tmp_path / "given" / "lm" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_loss" in r] == [3, 6]
    # The check can fail: with the loss calling the bare model, each process trains alone on its own half.
    first, second = _train_on_two_processes(tmp_path, "bare")
    assert not all(torch.equal(first[name], second[name]) for name in first)
