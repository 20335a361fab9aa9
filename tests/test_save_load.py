"""Saving and loading a model's parameters with its description and vocabulary:
a reloaded model is the same model, bit for bit; a wrong file is refused."""

import numpy as np
import pytest

from common.optimizer import SGD, Adam
from common.serialization import load_npz, save_npz
from common.trainer import RnnlmTrainer
from common.util import eval_perplexity
from models import BetterRnnlm, GruRnnlm, Rnnlm, SimpleRnnlm, model_from_config

V = 20
CORPUS = np.random.default_rng(0).integers(0, V, size=600).astype(np.int32)
VAL = np.random.default_rng(1).integers(0, V, size=150).astype(np.int32)
ID_TO_WORD = {i: f"w{i}" for i in range(V)}

MODELS = {
    "simple": lambda: SimpleRnnlm(V, 6, 8, seed=0),
    "lstm": lambda: Rnnlm(V, 6, 8, seed=0),
    "gru": lambda: GruRnnlm(V, 6, 8, seed=0),
    "better-tied": lambda: BetterRnnlm(V, 8, 8, num_layers=2, dropout_ratio=0.3,
                                       tie_weights=True, seed=0),
    "better-untied": lambda: BetterRnnlm(V, 6, 8, num_layers=1, dropout_ratio=0.3,
                                         tie_weights=False, seed=0),
}


def trained(name):
    model = MODELS[name]()
    trainer = RnnlmTrainer(model, Adam(lr=0.01))
    trainer.fit(CORPUS[:-1], CORPUS[1:], max_epoch=1, batch_size=4, time_size=5, max_iters=12,
                verbose=False)
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_generate_round_trip(tmp_path, name):
    model = trained(name)
    path = tmp_path / "model.npz"
    model.save_params(path, vocab=ID_TO_WORD)

    arrays, meta = load_npz(path)
    assert meta["model"] == type(model).__name__
    assert meta["vocab"] == [f"w{i}" for i in range(V)]
    assert all(a.dtype == np.float32 for a in arrays.values())

    fresh = model_from_config(meta["model"], meta["config"], seed=123)
    assert type(fresh) is type(model) and fresh.config == model.config
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.params, model.params, strict=True))
    assert fresh.load_params(path) == meta
    for (n1, a), (n2, b) in zip(fresh.named_params().items(), model.named_params().items(),
                                strict=True):
        assert n1 == n2 and a.dtype == b.dtype and np.array_equal(a, b), n1

    assert eval_perplexity(fresh, VAL) == eval_perplexity(model, VAL)
    for seed in (0, 1):
        assert fresh.generate([3, 4], 15, rng=seed) == model.generate([3, 4], 15, rng=seed)
    assert fresh.generate([5], 10, temperature=0) == model.generate([5], 10, temperature=0)


def test_tied_weights_round_trip(tmp_path):
    model = trained("better-tied")
    path = tmp_path / "tied.npz"
    model.save_params(path)
    arrays, _ = load_npz(path)
    assert "affine.W" not in arrays  # a tied array is stored once, under its first name
    assert "embed.W" in arrays and "affine.b" in arrays

    fresh = BetterRnnlm(V, 8, 8, num_layers=2, dropout_ratio=0.3, tie_weights=True, seed=5)
    fresh.load_params(path)
    assert fresh.affine.params[0] is fresh.embed.params[0]
    assert np.array_equal(fresh.embed.params[0], model.embed.params[0])
    # still tied after an update: the output layer sees the new embedding
    xs = CORPUS[:20].reshape(2, 10)
    fresh.forward(xs, CORPUS[1:21].reshape(2, 10))
    fresh.backward()
    SGD(lr=1.0).update(fresh.params, fresh.grads)
    assert fresh.affine.params[0] is fresh.embed.params[0]
    assert not np.array_equal(fresh.embed.params[0], model.embed.params[0])

    untied = BetterRnnlm(V, 8, 8, num_layers=2, dropout_ratio=0.3, tie_weights=False, seed=0)
    with pytest.raises(ValueError, match=r"missing \['affine\.W'\]"):
        untied.load_params(path)


def test_vocab_and_extra_metadata(tmp_path):
    model = SimpleRnnlm(4, 3, 3, seed=0)
    model.save_params(tmp_path / "a.npz", vocab=["<eos>", "é", " ", "\n"], level="char")
    _, meta = load_npz(tmp_path / "a.npz")
    assert meta["vocab"] == ["<eos>", "é", " ", "\n"] and meta["level"] == "char"
    model.save_params(tmp_path / "b.npz")
    _, meta = load_npz(tmp_path / "b.npz")
    assert "vocab" not in meta and set(meta) == {"model", "config"}
    with pytest.raises(ValueError, match="model"):
        model.save_params(tmp_path / "c.npz", model="Other")
    with pytest.raises(ValueError, match="config"):
        model.save_params(tmp_path / "c.npz", config={})


def test_an_id_to_word_dict_is_saved_in_id_order(tmp_path):
    """The book's id_to_word is a dict; one built out of order is still saved
    id by id (in insertion order every id would get another word)."""
    model = SimpleRnnlm(5, 3, 3, seed=0)
    model.save_params(tmp_path / "a.npz", vocab={1: "b", 0: "a", 2: "c", 4: "e", 3: "d"})
    assert load_npz(tmp_path / "a.npz")[1]["vocab"] == ["a", "b", "c", "d", "e"]


@pytest.fixture
def saved(tmp_path):
    model = SimpleRnnlm(V, 6, 8, seed=0)
    path = tmp_path / "ok.npz"
    model.save_params(path, vocab=ID_TO_WORD)
    return load_npz(path)


def rewrite(tmp_path, arrays, meta, name="bad.npz"):
    path = tmp_path / name
    save_npz(path, arrays, meta)
    return path


def test_wrong_shape_is_refused_by_name(tmp_path, saved):
    arrays, meta = saved
    arrays["rnn.Wh"] = np.zeros((8, 7), np.float32)
    model = SimpleRnnlm(V, 6, 8, seed=0)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"'rnn\.Wh' has shape \(8, 7\), the model needs \(8, 8\)"):
        model.load_params(rewrite(tmp_path, arrays, meta))
    # nothing was half-loaded
    assert all(np.array_equal(a, b) for a, b in zip(before, model.params, strict=True))


def test_missing_and_unexpected_names_are_refused(tmp_path, saved):
    arrays, meta = saved
    del arrays["rnn.b"]
    with pytest.raises(ValueError, match=r"missing \['rnn\.b'\]"):
        SimpleRnnlm(V, 6, 8).load_params(rewrite(tmp_path, arrays, meta))
    arrays, meta = load_npz(tmp_path / "ok.npz")
    arrays["extra.W"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"unexpected \['extra\.W'\]"):
        SimpleRnnlm(V, 6, 8).load_params(rewrite(tmp_path, arrays, meta))


def test_non_float_parameter_is_refused(tmp_path, saved):
    arrays, meta = saved
    arrays["rnn.b"] = np.zeros(8, np.int64)
    with pytest.raises(ValueError, match=r"'rnn\.b' has non-float dtype"):
        SimpleRnnlm(V, 6, 8).load_params(rewrite(tmp_path, arrays, meta))


def test_other_model_size_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    SimpleRnnlm(V, 6, 8, seed=0).save_params(path)
    needs = r"'embed\.W' has shape \(20, 6\), the model needs \(21, 6\)"
    with pytest.raises(ValueError, match=needs):
        SimpleRnnlm(V + 1, 6, 8).load_params(path)
    with pytest.raises(ValueError, match="does not fit Rnnlm"):
        Rnnlm(V, 6, 8).load_params(path)


def test_bad_files_are_refused(tmp_path):
    model = SimpleRnnlm(V, 6, 8)
    with pytest.raises(FileNotFoundError):
        model.load_params(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz"):
        model.load_params(tmp_path / "text.npz")
    # object arrays need pickle, which is never allowed
    np.savez(tmp_path / "pickled.npz", x=np.array([{"a": 1}], dtype=object),
             __meta__=np.array("{}"))
    with pytest.raises(ValueError, match="pickle"):
        model.load_params(tmp_path / "pickled.npz")
    np.savez(tmp_path / "nometa.npz", **{"embed.W": np.zeros((V, 6), np.float32)})
    with pytest.raises(ValueError, match="not written by rnnlab"):
        model.load_params(tmp_path / "nometa.npz")


def test_model_from_config_rejects_unknown_class():
    with pytest.raises(ValueError, match="unknown model class 'Transformer'"):
        model_from_config("Transformer", {})
