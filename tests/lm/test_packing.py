import torch
from transformers import LlamaConfig, LlamaForCausalLM

from aqaa.lm.packing import IGNORE, collate_packed, pack
from aqaa.lm.tasks import TrainingSequence


def tiny_llama(vocab_size=97):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval()


def seq(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 96, (n,), generator=g)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[n // 2:] = True
    return TrainingSequence(ids, mask, "aqaa")


def test_packed_rows_compute_what_each_sequence_computes_alone():
    model = tiny_llama()
    seqs = [seq(9, 1), seq(14, 2), seq(5, 3)]
    batch = collate_packed([seqs[:2], seqs[2:]], 24, pad_id=96)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=s.ids[None]).logits[0] for s in seqs]
    torch.testing.assert_close(packed[0, :9], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(packed[0, 9:23], alone[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(packed[1, :5], alone[2], rtol=1e-4, atol=1e-5)
    # labels: the sequence's ids where its loss mask is set, IGNORE elsewhere (padding included)
    assert batch["labels"][0, 9 + 7:23].tolist() == seqs[1].ids[7:].tolist()
    assert (batch["labels"][0, 9:9 + 7] == IGNORE).all() and (batch["labels"][0, 23:] == IGNORE).all()
    assert batch["position_ids"][0, 9:12].tolist() == [0, 1, 2]


def test_pack_fills_rows_without_splitting_or_losing_sequences():
    lengths = [int(x) for x in torch.randint(10, 300, (200,), generator=torch.Generator().manual_seed(0))]
    lengths += [2000]  # longer than a row: dropped and counted
    rows, dropped = pack(lengths, 1024, seed=3)
    assert dropped == 1
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(200))
    assert all(sum(lengths[i] for i in row) <= 1024 for row in rows)
    assert sum(lengths[:200]) / (len(rows) * 1024) > 0.9  # rows are nearly full
    assert pack(lengths, 1024, seed=3) == (rows, dropped)  # deterministic
