"""Files that are truncated, corrupted or foreign are refused with a clear
error (a ``ValueError`` or ``FileNotFoundError`` naming the file and the
problem), nothing is ever unpickled, and a refused load changes nothing."""

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.optimizer import Adam
from common.serialization import load_npz, save_npz
from common.trainer import RnnlmTrainer
from common.util import eval_perplexity
from datasets import text
from models import SimpleRnnlm

from script_loader import load_script

V, D, H = 30, 8, 8

# Where a hostile pickle would leave its mark if it were ever unpickled.
MARKER = {"path": None}


def _leave_marker(path):
    Path(path).write_text("pickle code ran")


class Evil:
    """Unpickling this calls _leave_marker: the test that nothing is unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_leave_marker, (self.marker,))


def new_trainer(seed=5):
    return RnnlmTrainer(SimpleRnnlm(V, D, H, seed=seed), Adam(0.01))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real parameters file and a real checkpoint (read back as bytes/arrays)."""
    folder = tmp_path_factory.mktemp("saved")
    trainer = new_trainer(seed=1)
    ids = np.random.default_rng(0).integers(0, V, size=201)
    trainer.fit(ids[:-1], ids[1:], max_epoch=1, batch_size=4, time_size=5, max_iters=3,
                checkpoint=folder / "ck.npz", verbose=False)
    trainer.model.save_params(folder / "params.npz", vocab=[f"w{i}" for i in range(V)])
    return {"params": folder / "params.npz", "checkpoint": folder / "ck.npz"}


def snapshot(trainer):
    return ([p.copy() for p in trainer.model.params], trainer.state_dict(),
            trainer.optimizer.state_dict(), trainer.model.get_state())


def assert_unchanged(trainer, before):
    params, state, optim, hidden = before
    assert all(np.array_equal(p, q) for p, q in zip(params, trainer.model.params, strict=True))
    assert trainer.state_dict() == state
    assert trainer.optimizer.state_dict().keys() == optim.keys()
    assert all(h is None for h in hidden) and all(h is None for h in trainer.model.get_state())


def load_params(path):
    trainer = new_trainer()
    before = snapshot(trainer)
    try:
        trainer.model.load_params(path)
    finally:
        assert_unchanged(trainer, before)


def resume(path):
    trainer = new_trainer()
    before = snapshot(trainer)
    try:
        trainer.resume(path)
    finally:
        assert_unchanged(trainer, before)


LOADERS = {"load_params": load_params, "resume": resume}


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def npy_bytes(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def huge_header():
    """A .npy header for a (10**12,) float64 array (8 TB), without the data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    return buf.getvalue()


META = npy_bytes(np.array('{"model": "SimpleRnnlm"}'))


def flip_middle(data):
    data = bytearray(data)
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    return bytes(data)


# name -> (make the file's bytes from the real file's bytes and the marker
# path, the message expected)
GENERIC = {
    "empty": (lambda raw, m: b"", "it is empty"),
    "truncated-half": (lambda raw, m: raw[: len(raw) // 2], "damaged or truncated"),
    "truncated-last-byte": (lambda raw, m: raw[:-1], "damaged or truncated"),
    "truncated-after-header": (lambda raw, m: raw[:100], "damaged or truncated"),
    "corrupted-bytes": (lambda raw, m: flip_middle(raw), "damaged or truncated|not a valid"),
    "random-bytes": (lambda raw, m: np.random.default_rng(0).bytes(500),
                     r"not an \.npz \(zip\) archive"),
    "text": (lambda raw, m: b"embed.W = [[1, 2], [3, 4]]\n", r"not an \.npz \(zip\) archive"),
    "lone-npy": (lambda raw, m: npy_bytes(np.zeros((V, D), np.float32)),
                 r"a single \.npy array, not an \.npz archive"),
    "pickle": (lambda raw, m: pickle.dumps({"embed.W": Evil(m)}),
               "looks like a Python pickle, which rnnlab never loads"),
    "pickle-protocol-0": (lambda raw, m: pickle.dumps(Evil(m), protocol=0),
                          r"not an \.npz \(zip\) archive"),
    "npz-with-object-array": (
        lambda raw, m: zip_bytes({"__meta__.npy": META,
                                  "embed.W.npy": npy_bytes(np.array([Evil(m)]), True)}),
        r"member 'embed\.W\.npy' holds Python objects \(dtype object\)",
    ),
    "npz-with-object-field": (
        lambda raw, m: zip_bytes({"__meta__.npy": META, "embed.W.npy": npy_bytes(
            np.array([(1, Evil(m))], dtype=[("a", "i4"), ("b", "O")]), True)}),
        "holds Python objects",
    ),
    "zip-with-garbage-member": (
        lambda raw, m: zip_bytes({"__meta__.npy": META, "embed.W.npy": b"\x00garbage" * 9}),
        r"member 'embed\.W\.npy' is not a valid \.npy array",
    ),
    "zip-with-a-text-member": (
        lambda raw, m: zip_bytes({"__meta__.npy": META, "readme.txt": b"hello"}),
        r"member 'readme\.txt' is not a \.npy array",
    ),
    "zip-member-shorter-than-its-header": (
        lambda raw, m: zip_bytes({"__meta__.npy": META,
                                  "embed.W.npy": npy_bytes(np.zeros((1000, 1000)))[:300]}),
        r"member 'embed\.W\.npy' is truncated: its header promises 8000000 bytes",
    ),
    "zip-member-claiming-a-huge-array": (
        lambda raw, m: zip_bytes({"__meta__.npy": META,
                                  "embed.W.npy": huge_header() + b"\x00" * 64}),
        r"member 'embed\.W\.npy' is truncated: its header promises 8000000000000 bytes",
    ),
    "zip-member-with-a-garbled-header": (
        lambda raw, m: zip_bytes({"__meta__.npy": META, "embed.W.npy": npy_bytes(
            np.zeros((2, 2)))[:128].replace(b"(2, 2)", b"(10**9", 1)}),
        r"member 'embed\.W\.npy' is not a valid \.npy array",
    ),
    "zip-member-with-a-code-header": (
        lambda raw, m: zip_bytes({"__meta__.npy": META, "embed.W.npy": npy_bytes(
            np.zeros((2, 2)))[:128].replace(b"(2, 2)", b"id(0) ", 1)}),
        r"member 'embed\.W\.npy' is not a valid \.npy array",
    ),
    "bzip2-member": (
        lambda raw, m: zip_bytes({"__meta__.npy": META}, zipfile.ZIP_BZIP2),
        "uses zip compression method 12; rnnlab reads stored or deflated members",
    ),
    "empty-zip": (lambda raw, m: zip_bytes({}), "has no '__meta__' entry"),
    "npz-without-metadata": (
        lambda raw, m: zip_bytes({"embed.W.npy": npy_bytes(np.zeros((V, D), np.float32))}),
        "has no '__meta__' entry: it was not written by rnnlab",
    ),
    "metadata-not-json": (
        lambda raw, m: zip_bytes({"__meta__.npy": npy_bytes(np.array("{model: x"))}),
        "its metadata is not valid JSON",
    ),
    "metadata-json-list": (
        lambda raw, m: zip_bytes({"__meta__.npy": npy_bytes(np.array("[1, 2]"))}),
        "its metadata is not a JSON object",
    ),
    "metadata-not-a-string": (
        lambda raw, m: zip_bytes({"__meta__.npy": npy_bytes(np.arange(3))}),
        "'__meta__' entry is not a JSON string",
    ),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(GENERIC))
def test_hostile_file_is_refused_with_a_clear_error(case, loader, saved, tmp_path):
    source = saved["params" if loader == "load_params" else "checkpoint"]
    marker = tmp_path / "pickle-ran.txt"
    make, message = GENERIC[case]
    path = tmp_path / "hostile.npz"
    path.write_bytes(make(source.read_bytes(), marker))

    with pytest.raises(ValueError, match=message) as info:
        LOADERS[loader](path)
    assert str(path) in str(info.value)
    assert not marker.exists(), "a pickle was loaded"


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_missing_file_and_folder(loader, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        LOADERS[loader](tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="is a folder"):
        LOADERS[loader](tmp_path)


def test_the_pickle_would_have_run_if_unpickled(tmp_path):
    """The hostile pickles above are real: loading them does run code."""
    marker = tmp_path / "pickle-ran.txt"
    pickle.loads(pickle.dumps({"embed.W": Evil(marker)}))
    assert marker.exists()


# -- parameter files that are well-formed but do not fit ---------------------------------


def rewrite(source, path, change_arrays=None, change_meta=None):
    """Write ``path`` as ``source`` with its arrays and metadata changed."""
    arrays, meta = load_npz(source)
    if change_arrays:
        change_arrays(arrays)
    if change_meta:
        change_meta(meta)
    save_npz(path, arrays, meta)
    return path


def _set(key, value):
    def change(d):
        d[key] = value
    return change


def _drop(key):
    return lambda d: d.pop(key)


PARAMS_CASES = {
    "missing-name": (_drop("rnn.Wh"), r"missing \['rnn\.Wh'\], unexpected nothing"),
    "extra-name": (_set("rnn.Wz", np.zeros(3, np.float32)), r"unexpected \['rnn\.Wz'\]"),
    "renamed": (lambda a: a.update({"RNN.Wh": a.pop("rnn.Wh")}),
                r"missing \['rnn\.Wh'\], unexpected \['RNN\.Wh'\]"),
    "wrong-shape": (_set("rnn.Wh", np.zeros((H, H + 1), np.float32)),
                    r"'rnn\.Wh' has shape \(8, 9\), the model needs \(8, 8\)"),
    "transposed": (_set("affine.W", np.zeros((V, H), np.float32)), "'affine.W' has shape"),
    "int-dtype": (_set("rnn.b", np.zeros(H, np.int64)), "'rnn.b' has non-float dtype int64"),
    "string-dtype": (_set("rnn.b", np.array(["x"] * H)), "'rnn.b' has non-float dtype <U1"),
    "bool-dtype": (_set("rnn.b", np.zeros(H, bool)), "non-float dtype bool"),
    "complex-dtype": (_set("rnn.b", np.zeros(H, complex)), "non-float dtype complex128"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_params_file_that_does_not_fit_is_refused(case, saved, tmp_path):
    change, message = PARAMS_CASES[case]
    path = rewrite(saved["params"], tmp_path / "p.npz", change_arrays=change)
    with pytest.raises(ValueError, match=message) as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_float64_params_are_accepted_and_cast(saved, tmp_path):
    path = rewrite(saved["params"], tmp_path / "p.npz", change_arrays=lambda a: a.update(
        {k: v.astype(np.float64) for k, v in a.items()}))
    model = SimpleRnnlm(V, D, H, seed=9)
    model.load_params(path)
    assert all(p.dtype == np.float32 for p in model.params)


def test_checkpoint_passed_to_load_params_and_params_passed_to_resume(saved):
    with pytest.raises(ValueError, match="is a training checkpoint, not a parameters file"):
        load_params(saved["checkpoint"])
    with pytest.raises(ValueError, match="is not an rnnlab checkpoint"):
        resume(saved["params"])


# -- checkpoints that are well-formed but do not fit ------------------------------------------


def _trainer_set(key, value):
    def change(meta):
        meta["trainer"][key] = value
    return change


CHECKPOINT_ARRAY_CASES = {
    "missing-param": (_drop("model/rnn.Wh"), r"missing \['rnn\.Wh'\]"),
    "extra-param": (_set("model/rnn.Wz", np.zeros(1, np.float32)), r"unexpected \['rnn\.Wz'\]"),
    "param-shape": (_set("model/rnn.Wh", np.zeros((H + 1, H), np.float32)),
                    r"parameter 'rnn\.Wh' has shape \(9, 8\)"),
    "param-int": (_set("model/embed.W", np.zeros((V, D), np.int32)), "non-float dtype int32"),
    "param-string": (_set("model/rnn.b", np.array(["1.0"] * H)), "non-float dtype <U3"),
    "optimizer-shape": (_set("optim/m.1", np.zeros((D + 1, H), np.float32)),
                        r"optimizer state 'm\.1' is float32 \(9, 8\)"),
    "optimizer-string": (_set("optim/v.0", np.array([["x"] * D] * V)),
                         r"optimizer state 'v\.0' is <U1"),
    "optimizer-extra-index": (_set("optim/m.6", np.zeros(1, np.float32)),
                              "does not fit a model with 6 distinct parameters"),
    "optimizer-missing-array": (_drop("optim/v.3"), "the optimizer state does not fit Adam"),
    "optimizer-unknown-array": (_set("optim/w.0", np.zeros((V, D), np.float32)),
                                "optimizer state does not fit Adam"),
    "hidden-state-units": (_set("state/0", np.zeros((4, H + 2), np.float32)),
                           r"recurrent state 0 is float32 \(4, 10\)"),
    "hidden-state-1d": (_set("state/0", np.zeros(H, np.float32)), "recurrent state 0"),
    "hidden-state-int": (_set("state/0", np.zeros((4, H), np.int8)), "recurrent state 0"),
    "hidden-state-extra": (_set("state/1", np.zeros((4, H), np.float32)),
                           "unexpected recurrent state 'state/1'"),
    "best-params-shape": (
        lambda a: a.update({**{"best/" + k[6:]: v for k, v in a.items() if k[:6] == "model/"},
                            "best/rnn.b": np.zeros(H + 1, np.float32)}),
        r"\(best parameters\): parameter 'rnn\.b' has shape \(9,\)",
    ),
    "best-params-missing": (_set("best/rnn.b", np.zeros(H, np.float32)),
                            r"\(best parameters\) does not fit SimpleRnnlm: missing"),
    "foreign-array": (_set("weights", np.zeros(3, np.float32)), "unexpected array 'weights'"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_ARRAY_CASES))
def test_checkpoint_arrays_that_do_not_fit_are_refused_before_anything_changes(
        case, saved, tmp_path):
    change, message = CHECKPOINT_ARRAY_CASES[case]
    path = rewrite(saved["checkpoint"], tmp_path / "ck.npz", change_arrays=change)
    with pytest.raises(ValueError, match=message) as info:
        resume(path)
    assert str(path) in str(info.value)


CHECKPOINT_META_CASES = {
    "no-format-marker": (_drop("format"), "is not an rnnlab checkpoint"),
    "other-version": (_set("version", 99), "checkpoint version 99, this rnnlab reads version 1"),
    "no-trainer-state": (_drop("trainer"), "checkpoint metadata lacks 'trainer'"),
    "other-model": (_set("model", "Rnnlm"), "holds the model Rnnlm"),
    "other-config": (_set("config", {"vocab_size": V + 1, "wordvec_size": D, "hidden_size": H}),
                     "but the model to resume is SimpleRnnlm"),
    "other-optimizer": (_set("optimizer", "SGD"), "was trained with SGD, not Adam"),
    "lr-not-a-number": (lambda m: m["optimizer_scalars"].update(lr="fast"),
                        "the optimizer state does not fit Adam"),
    "negative-step-count": (lambda m: m["optimizer_scalars"].update(t=-3),
                            "the optimizer state does not fit Adam"),
    "scalars-not-a-dict": (_set("optimizer_scalars", [0.01]), "scalars are not a JSON object"),
    "n-state-wrong": (_set("n_state", 2), "carries 2 recurrent states, the model has 1"),
    "n-state-string": (_set("n_state", "1"), "carries '1' recurrent states, the model has 1"),
    "epoch-not-a-number": (_trainer_set("epoch", "two"), "the trainer state is invalid"),
    "ppl-list-a-string": (_trainer_set("ppl_list", "123"), "ppl_list is not a list of numbers"),
    "history-not-a-dict": (_trainer_set("history", [1]), "history is not a JSON object"),
    "history-strings": (lambda m: m["trainer"]["history"].update(lr=["x"]),
                        r"history\['lr'\] is not a list of numbers"),
    "trainer-key-missing": (lambda m: m["trainer"].pop("time_idx"),
                            "checkpoint is damaged .*KeyError.*time_idx"),
    "sums-wrong-length": (_trainer_set("sums", [0.0]), "the trainer state is invalid"),
    "no-fit-start-epoch": (lambda m: m["trainer"].pop("fit_start_epoch"),
                           "has no 'fit_start_epoch' .* start the run again"),
    "fit-start-after-epoch": (_trainer_set("fit_start_epoch", 99),
                              "fit_start_epoch must be None or an epoch from 0 to 0, got 99"),
    "fit-start-a-string": (_trainer_set("fit_start_epoch", "0"), "fit_start_epoch must be"),
    "trainer-not-a-dict": (_set("trainer", "state"), "damaged|not a JSON object"),
    "foreign-generator": (_set("rngs", {"1": {"bit_generator": "PCG64"}}),
                          "random generators do not match"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_META_CASES))
def test_checkpoint_metadata_that_does_not_fit_is_refused(case, saved, tmp_path):
    change, message = CHECKPOINT_META_CASES[case]
    path = rewrite(saved["checkpoint"], tmp_path / "ck.npz", change_meta=change)
    with pytest.raises(ValueError, match=message) as info:
        resume(path)
    assert str(path) in str(info.value)


def test_damaged_generator_state_is_refused(tmp_path):
    from models import BetterRnnlm

    def make():
        return RnnlmTrainer(BetterRnnlm(V, D, D, num_layers=1, dropout_ratio=0.5, seed=1),
                            Adam(0.01))

    ids = np.random.default_rng(0).integers(0, V, size=201)
    good = tmp_path / "good.npz"
    make().fit(ids[:-1], ids[1:], max_epoch=1, batch_size=4, time_size=5, max_iters=2,
               checkpoint=good, verbose=False)
    _, meta = load_npz(good)
    key = sorted(meta["rngs"])[0]

    def damage(m):
        m["rngs"][key] = {"bit_generator": "MT19937", "state": {"key": [1], "pos": 0}}

    path = rewrite(good, tmp_path / "ck.npz", change_meta=damage)
    trainer = make()
    before = [p.copy() for p in trainer.model.params]
    with pytest.raises(ValueError, match=f"the state of random generator {key} is invalid"):
        trainer.resume(path)
    assert all(np.array_equal(p, q) for p, q in zip(before, trainer.model.params, strict=True))


def test_a_good_checkpoint_still_loads(saved):
    trainer = new_trainer()
    trainer.resume(saved["checkpoint"])
    assert trainer.iteration == 3 and trainer.optimizer.t == 3


# -- text corpora and ids outside the vocabulary ---------------------------------------------


def write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "content, level, message",
    [
        (b"   \n", "word", r"has 1 token\(s\) at word level"),
        (b"  \t  ", "word", r"has 0 token\(s\) at word level"),
        (b"x", "char", r"has 1 token\(s\) at char level"),
        (b"ok \xc3\x28 text", "char", r"not valid UTF-8: byte offset 3 \(line 1\)"),
        (b"\xef\xbb\xbf", "word", "is empty|has 0 token"),  # only a byte-order mark
        ("\ufeffword".encode("utf-16"), "word", "not valid UTF-8 .it looks like UTF-16.*"
                                                  "iconv -f utf-16"),
    ],
    ids=["only-a-newline", "only-whitespace", "one-char", "bad-utf8-char-level",
         "only-a-bom", "utf-16"],
)
def test_unusable_text_files(content, level, message, tmp_path):
    path = write(tmp_path / "t.txt", content)
    with pytest.raises(text.CorpusError, match=message) as info:
        text.load_data(path, level=level)
    assert str(path) in str(info.value)


def test_folder_instead_of_a_text_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        text.load_data(tmp_path)


def test_unknown_character_with_a_char_vocabulary(tmp_path):
    _, vocab, _ = text.load_data(write(tmp_path / "a.txt", "abc\n"), level="char")
    with pytest.raises(text.UnknownTokenError, match=r"line 2: token 'z'") as info:
        text.load_data(write(tmp_path / "b.txt", "cab\nz\n"), level="char", vocab=vocab)
    assert info.value.token == "z"


def test_vocab_with_gaps_in_its_ids_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vocab ids must be exactly 0 .. 1"):
        text.load_data(write(tmp_path / "a.txt", "a b\n"), vocab={"a": 0, "b": 5})


def test_ids_beyond_the_vocabulary_in_a_model():
    model = SimpleRnnlm(V, D, H, seed=0)
    ok = np.zeros((2, 3), np.int32)
    with pytest.raises(ValueError, match=rf"xs holds the id {V}, outside the vocabulary"):
        model.forward(np.full((2, 3), V), ok)
    with pytest.raises(ValueError, match=rf"ts holds the id {V + 4}, outside the vocabulary"):
        model.forward(ok, np.full((2, 3), V + 4))
    with pytest.raises(ValueError, match="xs holds the id -2"):
        model.forward(np.full((2, 3), -2), ok)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate([V], 3)


def test_ids_beyond_the_vocabulary_in_training_and_evaluation():
    model = SimpleRnnlm(V, D, H, seed=0)
    corpus = np.arange(200) % (V + 5)  # reaches V .. V + 4 in the first batch
    trainer = RnnlmTrainer(model, Adam(0.01))
    with pytest.raises(ValueError, match="outside the vocabulary range"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=50,
                    verbose=False)
    with pytest.raises(ValueError, match="outside the vocabulary range"):
        eval_perplexity(model, corpus)


def test_training_script_reports_a_bad_text_file(tmp_path, monkeypatch, capsys):
    script = load_script("train_rnnlm")
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "book.txt", b"caf\xe9 au lait\n")
    with pytest.raises(SystemExit) as info:
        script.main(["--corpus", "text", "--text-file", "book.txt", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: book.txt is not valid UTF-8: byte offset 3 (line 1)")
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == ["book.txt"]


# -- what rnnlab itself writes and reads ------------------------------------------------------


def test_a_compressed_npz_is_read(saved, tmp_path):
    arrays, meta = load_npz(saved["params"])
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)
    model = SimpleRnnlm(V, D, H, seed=9)
    model.load_params(path)
    assert np.array_equal(model.params[0], arrays["embed.W"])


def test_object_arrays_are_never_written(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        save_npz(tmp_path / "x.npz", {"a": np.array([{"b": 1}], dtype=object)})
    assert os.listdir(tmp_path) == []
