import torch
from transformers import LlamaConfig, LlamaForCausalLM

from aqaa.lm.packing import IGNORE, bucket, collate_packed, pack
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


def test_bucketed_rows_need_no_mask_and_compute_what_each_sequence_computes_alone():
    model = tiny_llama()
    seqs = [seq(9, 1), seq(14, 2)]
    batch = collate_packed([[seqs[0]], [seqs[1]]], None, pad_id=96)
    assert "attention_mask" not in batch and batch["input_ids"].shape == (2, 14)
    with torch.no_grad():
        padded = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=s.ids[None]).logits[0] for s in seqs]
    torch.testing.assert_close(padded[0, :9], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded[1], alone[1], rtol=1e-4, atol=1e-5)
    assert (batch["labels"][0, 9:] == IGNORE).all()


def test_bucket_keeps_batches_under_the_token_budget():
    lengths = [int(x) for x in torch.randint(10, 300, (300,), generator=torch.Generator().manual_seed(1))] + [5000]
    batches, dropped = bucket(lengths, 1024, seed=2)
    assert dropped == 1 and sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * max(lengths[i] for i in b) <= 1024 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert sum(lengths[:300]) / padded > 0.85  # similar lengths share a batch
