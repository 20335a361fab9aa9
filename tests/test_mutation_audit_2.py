"""Tests written by a mutation audit (second round): each pins a behaviour
that a small, realistic change to the code left unnoticed by the rest of the
suite (the loss layer's once-per-forward backward, the optimizer's copy of a
loaded state, what a checkpoint refuses, the trainer's epoch-end parts, the
feeders' ignored targets and read position, generate's prompt check, the
book-style attention decoder's gradient, the attention map's labels, the
corpus split's rounding)."""

from types import SimpleNamespace

import numpy as np
import pytest

from common.attention_map import plot_attention
from common.checkpoint import save_checkpoint
from common.feeders import Lanes, ShuffledRows
from common.optimizer import AdaGrad, Adam, Momentum, RMSprop
from common.schedules import BestParameters
from common.serialization import load_npz, save_npz
from common.trainer import RnnlmTrainer
from datasets import text
from layers import TimeSoftmaxWithLoss
from models import Rnnlm, SimpleRnnlm
from models.attention_seq2seq import AttentionDecoder
from models.base import Init
from models.generate import generate

# -- layers/softmax_with_loss.py ---------------------------------------------------------


def test_time_softmax_with_loss_backward_runs_once_per_forward():
    """A second backward without a forward is refused (not the targets subtracted twice)."""
    rng = np.random.default_rng(0)
    layer = TimeSoftmaxWithLoss()
    layer.forward(rng.standard_normal((2, 3, 5)).astype(np.float32),
                  rng.integers(0, 5, size=(2, 3)))
    layer.backward()
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward()


# -- common/optimizer.py -------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: Momentum(lr=0.1), lambda: AdaGrad(lr=0.1),
                                  lambda: RMSprop(lr=0.1), lambda: Adam(lr=0.1)],
                         ids=["Momentum", "AdaGrad", "RMSprop", "Adam"])
def test_load_state_dict_copies_the_arrays_it_is_given(make):
    """Updates after load_state_dict leave the caller's dict as it was (the state is copied in)."""
    rng = np.random.default_rng(1)
    p = rng.standard_normal((3, 4)).astype(np.float32)
    g = rng.standard_normal((3, 4)).astype(np.float32)
    first = make()
    first.update([p.copy()], [g])
    saved = first.state_dict()
    before = {k: np.copy(v) for k, v in saved.items()}

    second = make()
    second.load_state_dict(saved)
    params = [p.copy()]
    for _ in range(2):
        second.update(params, [g])

    for key, value in saved.items():
        assert np.array_equal(value, before[key]), key


# -- common/checkpoint.py ------------------------------------------------------------------

_V, _D, _H = 30, 8, 8


def _checkpoint(tmp_path):
    """A checkpoint of an Rnnlm trained two steps with Adam (state for every parameter)."""
    ids = np.random.default_rng(3).integers(0, _V, size=401).astype(np.int32)
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(Rnnlm(_V, _D, _H, seed=1), Adam(lr=0.01))
    trainer.fit(ids[:-1], ids[1:], max_epoch=1, max_iters=2, batch_size=4, time_size=5,
                eval_interval=100, verbose=False)
    save_checkpoint(path, trainer)
    return path


def _fresh_trainer():
    return RnnlmTrainer(Rnnlm(_V, _D, _H, seed=2), Adam(lr=0.01))


def _params_of(trainer):
    return [p.copy() for p in trainer.model.params]


def test_resume_refuses_optimizer_state_for_fewer_parameters_than_the_model(tmp_path):
    """Optimizer arrays that stop short of the model's parameters: refused, nothing changed."""
    arrays, meta = load_npz(_checkpoint(tmp_path))
    last = max(int(k.rsplit(".", 1)[1]) for k in arrays if k.startswith("optim/m."))
    del arrays[f"optim/m.{last}"], arrays[f"optim/v.{last}"]
    short = tmp_path / "short.npz"
    save_npz(short, arrays, meta)
    _assert_refused_and_nothing_changed(short, "optimizer state")


def _assert_refused_and_nothing_changed(path, message):
    trainer = _fresh_trainer()
    before = _params_of(trainer)
    with pytest.raises(ValueError, match=message):
        trainer.resume(path)
    assert all(np.array_equal(p, q) for p, q in zip(before, trainer.model.params, strict=True))


def test_resume_refuses_recurrent_states_of_different_batch_sizes(tmp_path):
    """Carried states (h, c) with different numbers of rows: refused, nothing changed."""
    arrays, meta = load_npz(_checkpoint(tmp_path))
    assert "state/0" in arrays and "state/1" in arrays
    h = arrays["state/1"]
    arrays["state/1"] = np.concatenate([h, h[:1]], axis=0)  # one row more than state/0
    bad = tmp_path / "bad.npz"
    save_npz(bad, arrays, meta)
    _assert_refused_and_nothing_changed(bad, "different batch sizes")


# -- common/schedules.py -------------------------------------------------------------------


def test_best_parameters_counts_a_tie_with_the_best_as_no_improvement():
    """A figure equal to the best so far is a bad epoch; the best epoch and parameters stay."""
    kept = {"w": np.zeros(2)}
    trainer = SimpleNamespace(
        last_val=5.0, best_val_ppl=5.0, best_epoch=1, epoch=2, bad_epochs=0, best_params=kept,
        model=SimpleNamespace(named_params=lambda: {"w": np.ones(2)}))
    assert BestParameters().end_epoch(trainer) is False
    assert trainer.bad_epochs == 1
    assert trainer.best_epoch == 1
    assert trainer.best_params is kept


# -- common/feeders.py ---------------------------------------------------------------------


def test_lanes_read_position_stays_modulo_the_corpus_length():
    """Lanes.next_batch keeps trainer.time_idx in [0, len(xs)) (positions read so far, modulo)."""
    xs = np.arange(20, dtype=np.int32)
    lanes = Lanes(xs, (xs + 1) % 20, batch_size=2, time_size=5)
    trainer = SimpleNamespace(time_idx=0)
    for step in range(1, 11):
        lanes.next_batch(trainer)
        assert trainer.time_idx == (5 * step) % 20


def test_shuffled_rows_skip_first_column_leaves_the_start_id_out_of_the_scored_targets():
    """With skip_first_column, a t whose only scored targets are its first column is refused."""
    x = np.zeros((4, 3), dtype=np.int32)
    t = np.full((4, 3), -1, dtype=np.int32)
    t[:, 0] = 9  # the decoder's start id
    with pytest.raises(ValueError, match="every target"):
        ShuffledRows(x, t, batch_size=2, ignore_label=-1, skip_first_column=True)


def test_shuffled_rows_a_batch_scores_nothing_when_only_its_start_ids_are_not_ignored():
    """scores_nothing looks past the first column when skip_first_column is set."""
    x = np.zeros((4, 3), dtype=np.int32)
    t = np.array([[9, 1, 2], [9, 3, -1], [9, -1, -1], [9, -1, -1]], dtype=np.int32)
    rows = ShuffledRows(x, t, batch_size=2, ignore_label=-1, skip_first_column=True)
    assert rows.scores_nothing(t[2:])
    assert not rows.scores_nothing(t[1:3])


def test_lanes_a_batch_with_some_ignored_targets_still_scores_something():
    """scores_nothing is True only when every target of the batch is the ignore label."""
    xs = np.arange(20, dtype=np.int32) % 5
    ts = xs.copy()
    ts[::3] = -1
    lanes = Lanes(xs, ts, batch_size=2, time_size=2, ignore_label=-1)
    assert not lanes.scores_nothing(np.array([[1, -1], [-1, -1]]))
    assert lanes.scores_nothing(np.array([[-1, -1], [-1, -1]]))


# -- models/generate.py --------------------------------------------------------------------


@pytest.mark.parametrize("beam_width", [None, 2])
def test_generate_refuses_a_prompt_id_equal_to_the_vocabulary_size(beam_width):
    """The id V is outside [0, V): generate names start_ids before computing anything."""
    model = SimpleRnnlm(10, 4, 4, seed=0)
    with pytest.raises(ValueError, match=r"start_ids \[10\] are outside the vocabulary"):
        generate(model, [3, 10], 2, beam_width=beam_width)


# -- models/attention_seq2seq.py -----------------------------------------------------------


def test_book_style_attention_decoder_gradient_reaches_the_last_encoder_state():
    """forward(xs, enc_hs) without h starts at enc_hs[:, -1]; backward adds that gradient."""
    V, D, H, N, T_enc, T_dec = 7, 4, 5, 2, 3, 4
    rng = np.random.default_rng(5)
    decoder = AttentionDecoder(V, D, H, Init(seed=0, dtype=np.float64))
    enc_hs = rng.standard_normal((N, T_enc, H))
    xs = rng.integers(0, V, size=(N, T_dec))
    weights = rng.standard_normal((N, T_dec, V))

    def loss(e):
        return float((decoder.forward(xs, e) * weights).sum())

    loss(enc_hs)
    denc_hs = decoder.backward(weights)

    numeric = np.zeros_like(enc_hs)
    eps = 1e-6
    for index in np.ndindex(enc_hs.shape):
        plus, minus = enc_hs.copy(), enc_hs.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (loss(plus) - loss(minus)) / (2 * eps)
    np.testing.assert_allclose(denc_hs, numeric, rtol=1e-5, atol=1e-7)


# -- common/attention_map.py ---------------------------------------------------------------


def test_plot_attention_shows_a_space_label_as_a_visible_character():
    """A space among the labels is drawn as the open-box character, not an invisible tick label."""
    fig = plot_attention(np.full((2, 2), 0.5), ["a", " "], [" ", "b"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "\u2423"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["\u2423", "b"]


# -- datasets/text.py ----------------------------------------------------------------------


def test_split_corpus_puts_each_border_at_the_nearest_token():
    """Borders are the cumulative fractions of the length rounded to the nearest token."""
    parts = text.split_corpus(np.arange(1001, dtype=np.int32), (0.9, 0.05, 0.05))
    assert [len(p) for p in parts] == [901, 50, 50]
    parts = text.split_corpus(np.arange(19, dtype=np.int32), (0.5, 0.5))
    assert [len(p) for p in parts] == [10, 9]  # 9.5 rounds to 10 (round half to even)

