import pytest
import torch

from aqaa.codec.interleave import GroupStream, deinterleave, group_count, interleave
from aqaa.vocab import AudioVocab

VOCAB = AudioVocab(text_size=100, linguistic_size=1024, semantic_size=4096)


def test_ids_sit_above_the_text_vocabulary():
    assert VOCAB.linguistic_offset == 100 and VOCAB.semantic_offset == 1124 and VOCAB.end == 5220


@pytest.mark.parametrize(("n_l", "n_s", "groups"), [(0, 0, 0), (1, 3, 0), (2, 2, 0), (2, 3, 1), (5, 9, 2),
                                                    (7, 9, 3), (7, 8, 2), (17, 25, 8), (16, 25, 8)])
def test_group_arithmetic_on_odd_lengths(n_l, n_s, groups):
    assert group_count(n_l, n_s) == groups
    ids = interleave(torch.arange(n_l), torch.arange(n_s), VOCAB)
    assert len(ids) == 5 * groups


def test_round_trip_and_layout():
    ling, sem = torch.randint(0, 1024, (9,)), torch.randint(0, 4096, (14,))
    ids = interleave(ling, sem, VOCAB)
    assert ids.tolist()[:5] == [100 + int(ling[0]), 100 + int(ling[1]), 1124 + int(sem[0]),
                                1124 + int(sem[1]), 1124 + int(sem[2])]
    back_l, back_s = deinterleave(ids, VOCAB)
    assert torch.equal(back_l, ling[:8]) and torch.equal(back_s, sem[:12])  # 4 groups; tails dropped


def test_malformed_ids_are_rejected():
    ids = interleave(torch.arange(4), torch.arange(6), VOCAB)
    with pytest.raises(ValueError, match="whole number"):
        deinterleave(ids[:-1], VOCAB)
    swapped = ids.clone()
    swapped[0], swapped[2] = ids[2], ids[0]
    with pytest.raises(ValueError, match="pattern"):
        deinterleave(swapped, VOCAB)


def test_single_stream_layouts():
    ling, sem = torch.arange(7), torch.arange(10)
    assert len(interleave(ling, sem, VOCAB, (0, 3))) == 9
    assert len(interleave(ling, sem, VOCAB, (2, 0))) == 6
    back_l, back_s = deinterleave(interleave(ling, sem, VOCAB, (0, 3)), VOCAB, (0, 3))
    assert len(back_l) == 0 and torch.equal(back_s, sem[:9])
    with pytest.raises(ValueError):
        group_count(3, 3, (0, 0))


def test_group_stream_releases_exactly_the_offline_groups():
    ling, sem = torch.randint(0, 1024, (21,)), torch.randint(0, 4096, (31,))
    stream = GroupStream(VOCAB)
    out, i, j = [], 0, 0
    for step in range(12):
        out.append(stream.push(ling[i:i + 2 + step % 2], sem[j:j + 3 - step % 2]))
        i, j = i + 2 + step % 2, j + 3 - step % 2
    out.append(stream.push(ling[i:], sem[j:]))
    assert torch.equal(torch.cat(out), interleave(ling, sem, VOCAB))
