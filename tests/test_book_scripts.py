"""The book's chapter 5-8 scripts, written out through rnnlab's public names.

"Deep Learning from Scratch 2" trains and samples its recurrent models with
short scripts. Each function below does what one of them does, its calls in
the book's order, with the book's hyperparameters as defaults; what a
reader changes in the book's imports is only the module names (``dataset``
-> ``datasets``, ``from simple_rnnlm import SimpleRnnlm`` -> ``from models
import SimpleRnnlm`` ...; the README's "Coming from the book" has the
table). The tests run them with small sizes (``corpus_size``/``eval_size``
cut the corpora, which the book does not); ``python
tests/test_book_scripts.py NAME`` runs one at the book's full size, which
is how the README's figures were made.
"""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.optimizer import SGD
from common.trainer import RnnlmTrainer
from common.util import eval_perplexity, to_cpu, to_gpu
from datasets import ptb
from models import (
    MODEL_CLASSES,
    AttentionSeq2seq,
    BetterRnnlm,
    BetterRnnlmGen,
    Rnnlm,
    RnnlmGen,
    SimpleRnnlm,
)

ROOT = Path(__file__).resolve().parent.parent
PTB_DIR = Path(os.environ.get("RNNLAB_PTB_DIR") or ROOT.parent / "shared" / "data" / "ptb")


# -- chapter 5 -------------------------------------------------------------------------------


def ch5_train(batch_size=10, wordvec_size=100, hidden_size=100, time_size=5, lr=0.1,
              max_epoch=100, corpus_size=1000):
    """ch05/train.py: SimpleRnnlm on the first 1000 words, through RnnlmTrainer."""
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    corpus = corpus[:corpus_size]
    vocab_size = int(max(corpus) + 1)
    xs = corpus[:-1]
    ts = corpus[1:]

    model = SimpleRnnlm(vocab_size, wordvec_size, hidden_size)
    optimizer = SGD(lr)
    trainer = RnnlmTrainer(model, optimizer)
    trainer.fit(xs, ts, max_epoch, batch_size, time_size)
    trainer.plot()
    return {"ppl_list": trainer.ppl_list}


def ch5_train_custom_loop(batch_size=10, wordvec_size=100, hidden_size=100, time_size=5,
                          lr=0.1, max_epoch=100, corpus_size=1000):
    """ch05/train_custom_loop.py: the same, with the truncated-BPTT loop written out."""
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    corpus = corpus[:corpus_size]
    vocab_size = int(max(corpus) + 1)
    xs = corpus[:-1]
    ts = corpus[1:]
    data_size = len(xs)
    max_iters = data_size // (batch_size * time_size)

    model = SimpleRnnlm(vocab_size, wordvec_size, hidden_size)
    optimizer = SGD(lr)

    # Lane i reads from offsets[i]; time_idx runs on over the iterations.
    jump = (corpus_size - 1) // batch_size
    offsets = np.arange(batch_size)[:, None] * jump
    time_idx = 0
    ppl_list = []
    for epoch in range(max_epoch):
        total_loss, loss_count = 0.0, 0
        for _ in range(max_iters):
            positions = (offsets + time_idx + np.arange(time_size)) % data_size
            batch_x, batch_t = xs[positions], ts[positions]
            time_idx += time_size
            loss = model.forward(batch_x, batch_t)
            model.backward()
            optimizer.update(model.params, model.grads)
            total_loss += loss
            loss_count += 1
        ppl = np.exp(total_loss / loss_count)
        print(f"| epoch {epoch + 1} | perplexity {ppl:.2f}")
        ppl_list.append(float(ppl))
    return {"ppl_list": ppl_list}


# -- chapter 6 -------------------------------------------------------------------------------


def ch6_train_rnnlm(batch_size=20, wordvec_size=100, hidden_size=100, time_size=35, lr=20.0,
                    max_epoch=4, max_grad=0.25, corpus_size=None, eval_size=None):
    """ch06/train_rnnlm.py: the LSTM language model on PTB, then its test perplexity."""
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    corpus_test, _, _ = ptb.load_data("test")
    corpus, corpus_test = corpus[:corpus_size], corpus_test[:eval_size]
    vocab_size = len(word_to_id)
    xs = corpus[:-1]
    ts = corpus[1:]

    model = Rnnlm(vocab_size, wordvec_size, hidden_size)
    optimizer = SGD(lr)
    trainer = RnnlmTrainer(model, optimizer)
    trainer.fit(xs, ts, max_epoch, batch_size, time_size, max_grad, eval_interval=20)
    with pytest.warns(UserWarning, match="lower limit 0 cannot be shown on a log axis"):
        trainer.plot(ylim=(0, 500))  # the book's line, on rnnlab's log axis

    model.reset_state()
    ppl_test = eval_perplexity(model, corpus_test)
    print("test perplexity: ", ppl_test)
    model.save_params()
    return {"ppl_list": trainer.ppl_list, "test_ppl": ppl_test}


def ch6_train_better_rnnlm(batch_size=20, wordvec_size=650, hidden_size=650, time_size=35,
                           lr=20.0, max_epoch=40, max_grad=0.25, dropout=0.5,
                           corpus_size=None, eval_size=None):
    """ch06/train_better_rnnlm.py: two LSTM layers, dropout, tied weights; one fit
    call per epoch, the learning rate divided by 4 when validation gets worse."""
    from common import config

    corpus, word_to_id, id_to_word = ptb.load_data("train")
    corpus_val, _, _ = ptb.load_data("val")
    corpus_test, _, _ = ptb.load_data("test")
    corpus, corpus_val, corpus_test = (corpus[:corpus_size], corpus_val[:eval_size],
                                       corpus_test[:eval_size])
    if config.GPU:
        corpus = to_gpu(corpus)
        corpus_val = to_gpu(corpus_val)
        corpus_test = to_gpu(corpus_test)

    vocab_size = len(word_to_id)
    xs = corpus[:-1]
    ts = corpus[1:]

    model = BetterRnnlm(vocab_size, wordvec_size, hidden_size, dropout)
    optimizer = SGD(lr)
    trainer = RnnlmTrainer(model, optimizer)

    best_ppl = float("inf")
    val_ppls, params_after_each_fit = [], []
    for _epoch in range(max_epoch):
        trainer.fit(xs, ts, max_epoch=1, batch_size=batch_size, time_size=time_size,
                    max_grad=max_grad)
        params_after_each_fit.append([to_cpu(p).copy() for p in model.params])

        model.reset_state()
        ppl = eval_perplexity(model, corpus_val)
        print("valid perplexity: ", ppl)
        val_ppls.append(ppl)

        if best_ppl > ppl:
            best_ppl = ppl
            model.save_params()
        else:
            lr /= 4.0
            optimizer.lr = lr

        model.reset_state()
        print("-" * 50)

    model.reset_state()
    ppl_test = eval_perplexity(model, corpus_test)
    print("test perplexity: ", ppl_test)
    return {"val_ppls": val_ppls, "test_ppl": ppl_test, "lr": optimizer.lr,
            "params_after_each_fit": params_after_each_fit}


def ch6_eval(wordvec_size=100, hidden_size=100, eval_size=None):
    """ch06/eval.py: load the saved Rnnlm and evaluate it on the test split."""
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    corpus_test, _, _ = ptb.load_data("test")
    corpus_test = corpus_test[:eval_size]

    model = Rnnlm(len(word_to_id), wordvec_size, hidden_size)
    model.load_params()
    model.reset_state()
    ppl_test = eval_perplexity(model, corpus_test)
    print("test perplexity: ", ppl_test)
    return {"test_ppl": ppl_test}


# -- chapter 7: generating text ----------------------------------------------------------


def ch7_generate_text(wordvec_size=100, hidden_size=100, path="Rnnlm.npz"):
    """ch07/generate_text.py: 100 words from 'you' by the trained Rnnlm."""
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    vocab_size = len(word_to_id)

    model = RnnlmGen(vocab_size, wordvec_size, hidden_size)
    model.load_params(path)

    start_word = "you"
    start_id = word_to_id[start_word]
    skip_words = ["N", "<unk>", "$"]
    skip_ids = [word_to_id[w] for w in skip_words]
    word_ids = model.generate(start_id, skip_ids)
    txt = " ".join([id_to_word[i] for i in word_ids])
    txt = txt.replace(" <eos>", ".\n")
    print(txt)
    return {"word_ids": word_ids, "skip_ids": skip_ids, "text": txt}


def ch7_generate_better_text(wordvec_size=650, hidden_size=650, path="BetterRnnlm.npz"):
    """ch07/generate_better_text.py: from 'you', then after 'the meaning of life is'."""
    from common.np import np  # the book: from common.np import * (see test_common_np)

    corpus, word_to_id, id_to_word = ptb.load_data("train")
    vocab_size = len(word_to_id)

    model = BetterRnnlmGen(vocab_size, wordvec_size, hidden_size)
    model.load_params(path)

    start_word = "you"
    start_id = word_to_id[start_word]
    skip_words = ["N", "<unk>", "$"]
    skip_ids = [word_to_id[w] for w in skip_words]
    word_ids = model.generate(start_id, skip_ids)
    txt = " ".join([id_to_word[i] for i in word_ids])
    print(txt.replace(" <eos>", ".\n"))

    model.reset_state()
    start_words = "the meaning of life is"
    start_ids = [word_to_id[w] for w in start_words.split(" ")]
    for x in start_ids[:-1]:
        x = np.array(x).reshape(1, 1)
        model.predict(x)
    word_ids2 = model.generate(start_ids[-1], skip_ids)
    word_ids2 = start_ids[:-1] + word_ids2
    txt2 = " ".join([id_to_word[i] for i in word_ids2])
    print("-" * 50)
    print(txt2.replace(" <eos>", ".\n"))
    return {"word_ids": word_ids, "word_ids2": word_ids2, "skip_ids": skip_ids,
            "start_ids": start_ids}


# -- chapters 7 and 8: sequence to sequence --------------------------------------------------


def ch7_train_seq2seq(wordvec_size=16, hidden_size=128, batch_size=128, max_epoch=25,
                      max_grad=5.0, is_reverse=False, model_name="Seq2seq", train_size=None,
                      test_size=None):
    """ch07/train_seq2seq.py: addition problems, the test accuracy after every epoch
    (``model_name='PeekySeq2seq'`` and ``is_reverse=True`` are the book's variants)."""
    from common.optimizer import Adam
    from common.trainer import Trainer
    from common.util import eval_seq2seq
    from datasets import sequence

    (x_train, t_train), (x_test, t_test) = sequence.load_data("addition.txt")
    x_train, t_train = x_train[:train_size], t_train[:train_size]
    x_test, t_test = x_test[:test_size], t_test[:test_size]
    char_to_id, id_to_char = sequence.get_vocab()
    if is_reverse:
        x_train, x_test = x_train[:, ::-1], x_test[:, ::-1]

    vocab_size = len(char_to_id)
    model = MODEL_CLASSES[model_name](vocab_size, wordvec_size, hidden_size)
    optimizer = Adam()
    trainer = Trainer(model, optimizer)

    acc_list = []
    for _epoch in range(max_epoch):
        trainer.fit(x_train, t_train, max_epoch=1, batch_size=batch_size, max_grad=max_grad)
        correct_num = 0
        for i in range(len(x_test)):
            question, correct = x_test[[i]], t_test[[i]]
            verbose = i < 10
            correct_num += eval_seq2seq(model, question, correct, id_to_char, verbose,
                                        is_reverse)
        acc = float(correct_num) / len(x_test)
        acc_list.append(acc)
        print(f"val acc {acc * 100:.3f}%")
    return {"acc_list": acc_list, "loss_list": trainer.loss_list}


def ch8_train(wordvec_size=16, hidden_size=256, batch_size=128, max_epoch=10, max_grad=5.0,
              train_size=None, test_size=None):
    """ch08/train.py: dates in many formats to ISO dates by AttentionSeq2seq, inputs reversed."""
    from common.optimizer import Adam
    from common.trainer import Trainer
    from common.util import eval_seq2seq
    from datasets import sequence

    (x_train, t_train), (x_test, t_test) = sequence.load_data("date.txt")
    x_train, t_train = x_train[:train_size], t_train[:train_size]
    x_test, t_test = x_test[:test_size], t_test[:test_size]
    char_to_id, id_to_char = sequence.get_vocab()
    x_train, x_test = x_train[:, ::-1], x_test[:, ::-1]

    vocab_size = len(char_to_id)
    model = AttentionSeq2seq(vocab_size, wordvec_size, hidden_size)
    optimizer = Adam()
    trainer = Trainer(model, optimizer)

    acc_list = []
    for _epoch in range(max_epoch):
        trainer.fit(x_train, t_train, max_epoch=1, batch_size=batch_size, max_grad=max_grad)
        correct_num = 0
        for i in range(len(x_test)):
            question, correct = x_test[[i]], t_test[[i]]
            verbose = i < 10
            correct_num += eval_seq2seq(model, question, correct, id_to_char, verbose,
                                        is_reverse=True)
        acc = float(correct_num) / len(x_test)
        acc_list.append(acc)
        print(f"val acc {acc * 100:.3f}%")
    model.save_params()
    return {"acc_list": acc_list, "loss_list": trainer.loss_list}


# -- the tests: the scripts with small sizes ------------------------------------------------------


@pytest.fixture
def book_folder(tmp_path, monkeypatch):
    """A fresh working folder (the scripts save Rnnlm.npz, ppl.png there) with PTB found
    through RNNLAB_PTB_DIR, as the book finds its dataset folder."""
    if not (PTB_DIR / "ptb.train.txt").is_file():
        pytest.skip(f"Penn Treebank files not present at {PTB_DIR} (set RNNLAB_PTB_DIR)")
    monkeypatch.setenv("RNNLAB_PTB_DIR", str(PTB_DIR))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_ch5_train_and_train_custom_loop(book_folder):
    small = dict(wordvec_size=16, hidden_size=16, lr=1.0, max_epoch=40, corpus_size=200)
    by_trainer = ch5_train(**small)["ppl_list"]
    by_hand = ch5_train_custom_loop(**small)["ppl_list"]
    assert (book_folder / "ppl.png").is_file()  # trainer.plot() without a display
    assert len(by_hand) == 40 and all(math.isfinite(p) for p in by_hand)
    # 200 words: both loops learn the text
    for ppls in (by_trainer, by_hand):
        assert ppls[-1] < ppls[0] / 2, ppls


def test_ch6_train_rnnlm_then_eval_then_ch7_generate_text(book_folder):
    small = dict(wordvec_size=16, hidden_size=16)
    trained = ch6_train_rnnlm(**small, batch_size=4, time_size=10, max_epoch=1,
                              corpus_size=1800, eval_size=300)
    assert (book_folder / "Rnnlm.npz").is_file()  # model.save_params(): named after the class
    assert trained["ppl_list"][-1] < trained["ppl_list"][0]
    assert trained["test_ppl"] < 5000  # from about 10,000 (the vocabulary) at the start

    evaluated = ch6_eval(**small, eval_size=300)
    assert evaluated["test_ppl"] == pytest.approx(trained["test_ppl"], rel=1e-6)

    generated = ch7_generate_text(**small)
    word_ids = generated["word_ids"]
    assert len(word_ids) == 100 and word_ids[0] == ptb.load_data("train")[1]["you"]
    assert not set(word_ids[1:]) & set(generated["skip_ids"])
    # The book samples without a seed: the next word may end the sentence.
    assert generated["text"].startswith(("you ", "you.\n"))


def test_ch6_train_better_rnnlm_then_ch7_generate_better_text(book_folder):
    small = dict(wordvec_size=16, hidden_size=16)
    run = ch6_train_better_rnnlm(**small, batch_size=4, time_size=10, max_epoch=2,
                                 corpus_size=2000, eval_size=300)
    assert (book_folder / "BetterRnnlm.npz").is_file()
    assert len(run["val_ppls"]) == 2 and all(math.isfinite(p) for p in run["val_ppls"])
    assert run["lr"] in (20.0, 5.0)  # divided by 4 after a worse epoch
    assert math.isfinite(run["test_ppl"])

    generated = ch7_generate_better_text(**small)
    assert len(generated["word_ids"]) == 100
    assert generated["word_ids2"][:4] == generated["start_ids"][:4]
    assert len(generated["word_ids2"]) == 104
    for ids in (generated["word_ids"][1:], generated["word_ids2"][5:]):
        assert not set(ids) & set(generated["skip_ids"])


@pytest.mark.parametrize("model_name, is_reverse", [("Seq2seq", False), ("PeekySeq2seq", True)])
def test_ch7_train_seq2seq(book_folder, model_name, is_reverse):
    run = ch7_train_seq2seq(wordvec_size=8, hidden_size=16, batch_size=32, max_epoch=2,
                            model_name=model_name, is_reverse=is_reverse, train_size=640,
                            test_size=20)
    assert len(run["acc_list"]) == 2 and all(0 <= a <= 1 for a in run["acc_list"])
    assert run["loss_list"] and all(math.isfinite(x) for x in run["loss_list"])


def test_ch8_train(book_folder):
    run = ch8_train(wordvec_size=8, hidden_size=16, batch_size=32, max_epoch=1, train_size=640,
                    test_size=20)
    assert len(run["acc_list"]) == 1 and 0 <= run["acc_list"][0] <= 1
    assert (book_folder / "AttentionSeq2seq.npz").is_file()


def test_ch6_each_fit_call_trains_one_more_epoch_as_in_the_book(book_folder):
    run = ch6_train_better_rnnlm(wordvec_size=8, hidden_size=8, batch_size=4, time_size=5,
                                 max_epoch=2, corpus_size=600, eval_size=100)
    first, second = run["params_after_each_fit"]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_ch7_each_fit_call_trains_one_more_epoch_as_in_the_book():
    from common.optimizer import Adam
    from common.trainer import Trainer
    from models import Seq2seq

    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 10, size=(64, 5)), rng.integers(0, 10, size=(64, 4))
    model = Seq2seq(10, 4, 8)
    trainer = Trainer(model, Adam())
    trainer.fit(x, t, max_epoch=1, batch_size=16)
    first = [to_cpu(p).copy() for p in model.params]
    trainer.fit(x, t, max_epoch=1, batch_size=16)
    assert not all(np.array_equal(a, to_cpu(b)) for a, b in zip(first, model.params,
                                                                strict=True))


# -- the book's generating models -----------------------------------------------------------------


@pytest.mark.parametrize("cls, args", [(RnnlmGen, (12, 6, 8)), (BetterRnnlmGen, (12, 8, 8))])
def test_gen_models_generate_as_the_book(cls, args):
    model = cls(*args, seed=0)
    np.random.seed(3)
    ids = model.generate(4, skip_ids=[0, 1, 2], sample_size=40)
    assert len(ids) == 40 and ids[0] == 4 and all(isinstance(i, int) for i in ids)
    assert not set(ids[1:]) & {0, 1, 2}
    # it goes on from the carried state and leaves it advanced
    state = model.get_state()
    assert all(s is not None and s.shape[0] == 1 for s in state)
    np.random.seed(3)
    model.reset_state()
    assert model.generate(4, skip_ids=[0, 1, 2], sample_size=40) == ids  # np.random.seed
    model.reset_state()
    with_rng = model.generate(4, sample_size=20, rng=7)
    model.reset_state()
    assert model.generate(4, sample_size=20, rng=np.random.default_rng(7)) == with_rng


def test_gen_models_carry_the_prompt_fed_through_predict():
    model = RnnlmGen(12, 6, 8, seed=0)
    model.embed.params[0][...] *= 300  # make the prompt matter a lot
    outs = []
    for prompt in ([1, 2, 3], [7, 8, 9]):
        model.reset_state()
        for x in prompt:
            model.predict(np.array(x).reshape(1, 1))
        outs.append(model.generate(5, sample_size=30, rng=0))
    assert outs[0] != outs[1]


def test_better_rnnlm_gen_generates_without_dropout():
    model = BetterRnnlmGen(12, 8, 8, 0.5, seed=0)
    model.train()  # even when switched to training mode, generate samples without dropout
    a = model.generate(3, sample_size=20, rng=0)
    model.reset_state()
    model.eval()
    assert model.generate(3, sample_size=20, rng=0) == a
    assert all(layer.train_flg is False for layer in model.layers if hasattr(layer, "train_flg"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(start_id=12), "start_id must be one integer id"),
    (dict(start_id=-1), "start_id must be one integer id"),
    (dict(start_id=1.0), "start_id must be one integer id"),
    (dict(start_id=1, sample_size=0), "sample_size must be a positive integer"),
    (dict(start_id=1, skip_ids=[12]), "skip_ids must be ids"),
    (dict(start_id=1, skip_ids=list(range(12))), "every id"),
])
def test_gen_models_refuse_nonsense(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RnnlmGen(12, 6, 8, seed=0).generate(**kwargs)


# -- the book's GPU switch ------------------------------------------------------------------------


def run_python(code, tmp_path, extra_path=None, **env):
    path = os.pathsep.join([str(ROOT)] + ([str(extra_path)] if extra_path else []))
    environment = {k: v for k, v in os.environ.items() if k != "RNNLAB_GPU"}
    environment.update(PYTHONPATH=path, **env)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def fake_cupy(tmp_path):
    """A stand-in 'cupy' package (NumPy underneath) that records that it was imported."""
    folder = tmp_path / "fake"
    (folder / "cupy").mkdir(parents=True)
    (folder / "cupy" / "__init__.py").write_text(
        "from numpy import *  # noqa\nimport numpy\nfloat32 = numpy.float32\n"
        "IS_FAKE = True\n")
    return folder


def test_config_gpu_before_the_imports_asks_for_cupy(tmp_path, fake_cupy):
    code = ("from common import config\nconfig.GPU = True\n"
            "from common import backend\nfrom common.optimizer import SGD\n"
            "print(backend.GPU, backend.xp.__name__, getattr(backend.xp, 'IS_FAKE', False))")
    done = run_python(code, tmp_path, extra_path=fake_cupy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "cupy", "True"]


@pytest.mark.skipif(__import__("importlib").util.find_spec("cupy") is not None,
                    reason="cupy is installed here")
def test_config_gpu_without_cupy_is_the_backends_clear_import_error(tmp_path):
    code = "from common import config\nconfig.GPU = True\nfrom models import Rnnlm\n"
    done = run_python(code, tmp_path)
    assert done.returncode != 0
    assert "ImportError: common.config.GPU = True asks for the CuPy backend" in done.stderr
    assert "pip install" in done.stderr


def test_config_gpu_after_the_backend_was_chosen_is_refused(tmp_path):
    code = ("from models import Rnnlm\nfrom common import config\nprint(config.GPU)\n"
            "config.GPU = False\n"  # what was chosen: fine
            "config.GPU = True\n")
    done = run_python(code, tmp_path)
    assert done.returncode != 0 and done.stdout.strip() == "False"
    assert "RuntimeError: config.GPU = True comes too late" in done.stderr
    assert "NumPy backend" in done.stderr and "before any other rnnlab import" in done.stderr


def test_config_gpu_tells_what_rnnlab_gpu_chose(tmp_path, fake_cupy):
    code = "from common import backend, config\nprint(config.GPU)\nconfig.GPU = False\n"
    done = run_python(code, tmp_path, extra_path=fake_cupy, RNNLAB_GPU="1")
    assert done.stdout.strip() == "True"
    assert "RuntimeError: config.GPU = False comes too late" in done.stderr


def test_to_gpu_and_to_cpu_from_common_util():
    a = np.arange(3)
    assert isinstance(to_gpu(a), np.ndarray) and to_cpu(to_gpu(a)) is not None
    np.testing.assert_array_equal(to_cpu(to_gpu(a)), a)


# -- full size: python tests/test_book_scripts.py NAME ----------------------------------------


def time_better_rnnlm_epoch(iters=20, batch_size=20, time_size=35):
    """Seconds per epoch of ch06/train_better_rnnlm.py, from ``iters`` timed iterations."""
    corpus, word_to_id, _ = ptb.load_data("train")
    xs, ts = corpus[:-1], corpus[1:]
    model = BetterRnnlm(len(word_to_id), 650, 650, 0.5)
    trainer = RnnlmTrainer(model, SGD(20.0))
    trainer.fit(xs, ts, max_epoch=1, batch_size=batch_size, time_size=time_size,
                max_grad=0.25, max_iters=2, verbose=False)  # warm up
    start = time.perf_counter()
    trainer.fit(xs, ts, max_epoch=1, batch_size=batch_size, time_size=time_size,
                max_grad=0.25, max_iters=2 + iters, verbose=False)
    per_iter = (time.perf_counter() - start) / iters
    iters_per_epoch = len(xs) // (batch_size * time_size)
    print(f"{per_iter:.3f} s per iteration x {iters_per_epoch} iterations = "
          f"{per_iter * iters_per_epoch / 60:.1f} min per epoch")


if __name__ == "__main__":
    scripts = {"ch5_train": ch5_train, "ch5_train_custom_loop": ch5_train_custom_loop,
               "ch6_train_rnnlm": ch6_train_rnnlm, "ch6_eval": ch6_eval,
               "ch7_generate_text": ch7_generate_text,
               "ch6_train_better_rnnlm": ch6_train_better_rnnlm,
               "ch7_generate_better_text": ch7_generate_better_text,
               "ch7_train_seq2seq": ch7_train_seq2seq, "ch8_train": ch8_train,
               "time_better_rnnlm_epoch": time_better_rnnlm_epoch}
    if len(sys.argv) != 2 or sys.argv[1] not in scripts:
        sys.exit(f"usage: python tests/test_book_scripts.py {{{','.join(scripts)}}}")
    started = time.perf_counter()
    result = scripts[sys.argv[1]]()
    if result and "ppl_list" in result:
        print("last training perplexity:", result["ppl_list"][-1])
    print(f"{time.perf_counter() - started:.0f} s")


@pytest.mark.parametrize("gpu", [False, True])
def test_common_np_star_import_opens_the_books_scripts(tmp_path, fake_cupy, gpu):
    """``from common.np import *`` (ch07/generate_better_text.py's first import)
    gives ``np``, the backend's array module, and ``GPU``."""
    code = ("from common import config\n" + ("config.GPU = True\n" if gpu else "")
            + "from common.np import *\n"
            "from common import backend\n"
            "x = np.array(3).reshape(1, 1)\n"
            "print(GPU, np is backend.xp, np.__name__, x.shape)")
    done = run_python(code, tmp_path, extra_path=fake_cupy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(gpu), "True", "cupy" if gpu else "numpy", "(1,", "1)"]
