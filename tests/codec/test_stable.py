import torch

from aqaa.codec.stable import MIN_ROWS, nearest, stable_linear


def test_a_rows_result_does_not_depend_on_how_many_rows_come_with_it():
    torch.manual_seed(0)
    for k, n in [(768, 256), (257, 80), (32, 4096)]:
        w, b = torch.randn(n, k), torch.randn(n)
        x = torch.randn(300, k)
        whole = stable_linear(x, w, b)
        for rows in [*range(1, MIN_ROWS + 3), 31, 64, 129]:
            for start in (0, 5, 300 - rows):
                assert torch.equal(stable_linear(x[start:start + rows], w, b), whole[start:start + rows]), (k, rows)


def test_nearest_matches_brute_force():
    torch.manual_seed(1)
    x, codebook = torch.randn(50, 8), torch.randn(20, 8)
    assert torch.equal(nearest(x, codebook), torch.cdist(x, codebook).argmin(-1))
