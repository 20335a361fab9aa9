"""benchmarks.bounds: the pieces of the two-core bound, and the twin processes
that keep the other cores busy with the same piece while one is timed."""

import numpy as np

from benchmarks import bounds


def test_pieces_compute_what_they_name():
    product = bounds._build(("product", (3, 4), (4, 5), False))()
    assert product.shape == (3, 5) and product.dtype == np.float32
    # A transposed view: the product by b.T, where b is a contiguous (5, 4) array.
    transposed = bounds._build(("product", (2, 3, 4), (2, 4, 5), True))()
    assert transposed.shape == (2, 3, 5)
    out = bounds._build(("tanh", (3, 4)))()
    assert out.shape == (3, 4) and np.all(np.abs(out) < 1)


def test_twins_run_each_piece_and_stop(capfd):
    with bounds.Twins(2) as twins:
        assert len(twins.processes) == 2
        for piece in [("exp", (8, 16)), ("product", (8, 16), (16, 8), True)]:
            seconds = bounds.piece_seconds(piece, repeats=3, twins=twins)
            assert 0 < seconds < 1
    assert all(p.returncode == 0 for p in twins.processes)  # each left when told
    assert capfd.readouterr().err == ""


def test_bound_of_a_tiny_model_is_positive_and_grows_with_the_work():
    small = bounds.bound_ms([("lstm", 4, 3, 5, 8)], [(12, 8, 10)], threads=2, repeats=3)
    large = bounds.bound_ms([("lstm", 64, 12, 32, 64)], [(768, 64, 50)], threads=2, repeats=3)
    assert 0 < small < large < 1e3
