"""Fixes from an audit of generation and of reading text files: a terminal that
cannot show the sample's characters, a guessed token level, --stop and prompts
in another Unicode form, a tiny temperature's warning, and binary or UTF-32
files given as text."""

import gzip
import io
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from datasets import text
from models import SimpleRnnlm, generate
from models.generate import _pick

from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_text.py"


def model_file(path, vocab, **meta):
    """A small untrained SimpleRnnlm saved with ``vocab`` (and ``level=`` if given)."""
    SimpleRnnlm(len(vocab), 3, 4, seed=0).save_params(path, vocab=vocab, **meta)
    return str(path)


# -- 1. characters the output's encoding cannot hold -------------------------------------------


def test_an_ascii_terminal_gets_backslash_escapes_and_one_warning(tmp_path):
    """The emoji model on PYTHONIOENCODING=ascii: a UnicodeEncodeError traceback."""
    path = model_file(tmp_path / "m.npz", ["😀", "é", "a", "\n"], level="char")

    def run(encoding):
        env = dict(os.environ, PYTHONIOENCODING=encoding, OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1")
        return subprocess.run([sys.executable, str(SCRIPT), "--model", path, "--length", "20",
                               "--seed", "3"], env=env, capture_output=True, timeout=60)

    plain, ascii_only = run("utf-8"), run("ascii")
    assert plain.returncode == 0 and plain.stderr == b""
    assert ascii_only.returncode == 0, ascii_only.stderr.decode()
    out = ascii_only.stdout.decode("ascii")
    assert "\\U0001f600" in out or "\\xe9" in out
    assert out.encode().decode("unicode_escape") == plain.stdout.decode("utf-8")
    err = ascii_only.stderr.decode()
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "backslash escapes" in err and "PYTHONIOENCODING=utf-8" in err


@pytest.mark.skipif(os.name != "posix", reason="closes the child's standard output")
def test_a_closed_standard_output_is_said_before_the_work(tmp_path):
    """``>&-``: an AttributeError on writing, after generating."""
    path = model_file(tmp_path / "m.npz", ["a", "b", "\n"], level="char")
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", path, "--length", "5"],
                          preexec_fn=lambda: os.close(1), stderr=subprocess.PIPE, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: standard output is closed")


@pytest.mark.skipif(os.name != "posix", reason="closes the child's standard error")
def test_with_standard_error_closed_the_notices_stay_out_of_the_text(tmp_path):
    """``2>&-``: print(file=sys.stderr) with sys.stderr None writes to stdout."""
    path = model_file(tmp_path / "m.npz", ["a", "b", "\n"])  # no level: a notice
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", path, "--length", "5",
                           "--seed", "1"], preexec_fn=lambda: os.close(2),
                          stdout=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 0
    assert "notice" not in done.stdout and len(done.stdout.replace("\n", "")) <= 6


def test_an_output_that_holds_every_character_is_written_as_it_is(tmp_path, capsys,
                                                                   monkeypatch):
    path = model_file(tmp_path / "m.npz", ["😀", "é", "a", "\n"], level="char")
    script = load_script("generate_text")
    argv = ["--model", path, "--length", "20", "--seed", "3"]
    assert script.main(argv) == 0
    expected = capsys.readouterr().out
    for encoding in ("utf-8", "latin-1", "ascii"):
        raw = io.BytesIO()
        stdout = io.TextIOWrapper(raw, encoding=encoding, newline="")
        monkeypatch.setattr(sys, "stdout", stdout)
        assert script.main(argv) == 0
        stdout.flush()
        err = capsys.readouterr().err
        written = raw.getvalue().decode(encoding)
        try:
            expected.encode(encoding)
        except UnicodeEncodeError:
            assert err.count("warning: ") == 1
            assert written == expected.encode(encoding, "backslashreplace").decode(encoding)
        else:
            assert err == "" and written == expected


# -- 2. a guessed token level ------------------------------------------------------------------


def test_a_guessed_char_level_is_said_with_how_to_record_the_level(tmp_path, capsys):
    """Digits saved from Python without level=: ' ' was refused without a reason."""
    script = load_script("generate_text")
    guessed = model_file(tmp_path / "digits.npz", list("0123456789"))
    assert script.main(["--model", guessed, "--start", "1 2", "--length", "3"]) == 2
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if line.startswith("notice: ")]
    assert len(notices) == 1
    assert "guessed char level" in notices[0] and "every token is one character" in notices[0]
    assert 'save_params(path, vocab=..., level="word")' in notices[0]
    assert "error: the character ' ' is not in the model's vocabulary" in err

    recorded = model_file(tmp_path / "words.npz", list("0123456789"), level="word")
    assert script.main(["--model", recorded, "--start", "1 2", "--length", "3"]) == 0
    assert capsys.readouterr().err == ""
    # <eos> or a longer token leaves no doubt: nothing to say.
    certain = model_file(tmp_path / "eos.npz", ["<eos>", "1", "2"])
    assert script.main(["--model", certain, "--start", "1 2", "--length", "3"]) == 0
    assert capsys.readouterr().err == ""


# -- 3. --stop of several code points, another Unicode form ------------------------------------

NFD_VOCAB = ["a", "e", "\u0301", "\r", "\n"]  # é as e + combining acute accent
NFC_VOCAB = ["a", "\u00e9", "\r", "\n"]  # é precomposed


@pytest.mark.parametrize("stop, shown", [
    ("\\r\\n", "got 2: '\\r\\n' (U+000D + U+000A); stop at one of them, e.g. the last: "
               "--stop '\\n'"),
    ("\U0001f44d\U0001f3fd", "got 2: '\U0001f44d\U0001f3fd' (\U0001f44d + U+1F3FD)"),
])
def test_a_stop_of_several_characters_is_refused_as_such(tmp_path, capsys, stop, shown):
    path = model_file(tmp_path / "m.npz", NFD_VOCAB, level="char")
    assert load_script("generate_text").main(["--model", path, "--stop", stop]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --stop must be one character at character level, {shown}\n"


@pytest.mark.parametrize("vocab, argv, message", [
    # a prompt typed precomposed, a model of decomposed characters, and back
    (NFD_VOCAB, ["--start", "a\u00e9"],
     "the character 'é' is not in the model's vocabulary (5 tokens); the model knows it as "
     "e + U+0301 (another Unicode form): give the text in NFD form"),
    # 'e' has no other form, the prompt has: 'aé' (the mark alone said nothing of it)
    (NFC_VOCAB, ["--start", "ae\u0301"],
     "the character 'e' is not in the model's vocabulary (4 tokens); the model knows e + U+0301 "
     "as é (another Unicode form): give the text in NFC form"),
    # Hangul typed as jamo (NFD, as macOS writes it), whose vowels are no marks.
    (["\uac00", "\ub098", "\n"], ["--start", "\u1100\u1161\u1102\u1161"],
     "the character '\u1100' is not in the model's vocabulary (3 tokens); the model "
     "knows \u1100 + \u1161 as \uac00 (another Unicode form): give the text in NFC form"),
    # NFD Vietnamese: the first of two marks is unknown (the letter has both).
    (["o", "\u1ed9", "\n"], ["--start", "o\u0323\u0302"],
     "the character '\u0323' (U+0323) is not in the model's vocabulary (3 tokens); the model "
     "knows o + U+0323 + U+0302 as \u1ed9 (another Unicode form)"),
    (["o", "\u1ecd", "\u1ed9", "\n"], ["--start", "o\u0323\u0302"],
     "the model knows o + U+0323 + U+0302 as \u1ed9"),
    # A Hangul syllable of three jamo, its vowel unknown.
    (["\uac01", "\n"], ["--start", "\u1100\u1161\u11a8"],
     "the model knows \u1100 + \u1161 + \u11a8 as \uac01"),
    # The mark is what is unknown, and other unknown characters follow.
    (["a", "e", "\u00e9", "\n"], ["--start", "ae\u0301 xyz"],
     "the character '\u0301' (U+0301) is not in the model's vocabulary (4 tokens); the model "
     "knows e + U+0301 as é (another Unicode form): give the text in NFC form"),
    (NFD_VOCAB, ["--stop", "\\u00e9"],
     "--stop: the character 'é' is not in the model's vocabulary (5 tokens); the model knows "
     "it as e + U+0301 (another Unicode form): stop at its last character, --stop '\\u0301'"),
    (NFC_VOCAB, ["--stop", "e\\u0301"],
     "--stop must be one character at character level, got 2: 'e\u0301' (e + U+0301); the "
     "model "
     "knows it as é (another Unicode form): --stop '\\xe9'"),
])
def test_a_character_in_another_unicode_form_is_named(tmp_path, capsys, vocab, argv, message):
    path = model_file(tmp_path / "m.npz", vocab, level="char")
    assert load_script("generate_text").main(["--model", path, *argv]) == 2
    assert message in capsys.readouterr().err


def test_old_mac_line_ends_start_and_stop_a_sample(tmp_path, capsys):
    """A text whose lines end with a lone CR: the char model has no '\\n', so
    the sample started from its first token with a notice, and --stop '\\n'
    was refused without a word of '\\r'; at word level --stop '\\r' (a line
    end, read as <eos>) was unknown."""
    script = load_script("generate_text")
    path = model_file(tmp_path / "c.npz", ["a", "b", "\r", " "], level="char")
    assert script.main(["--model", path, "--length", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().err == ""  # started after a line end, unseen
    assert script.main(["--model", path, "--stop", "\\n"]) == 2
    assert capsys.readouterr().err == ("error: --stop: the model has no '\\n': its text's "
                                       "lines end with a lone '\\r' (old Mac line ends): "
                                       "--stop '\\r'\n")
    assert script.main(["--model", path, "--stop", "\\r", "--length", "5"]) == 0
    words = model_file(tmp_path / "w.npz", ["<eos>", "a", "b"], level="word")
    assert script.main(["--model", words, "--stop", "\\r", "--length", "5"]) == 0


def test_a_line_end_in_a_word_level_prompt_is_eos(tmp_path, monkeypatch, capsys):
    """A prompt of two lines was read as one (the line end as a space), where
    the training text, and inspect_model.py, read <eos> there."""
    script = load_script("generate_text")
    path = model_file(tmp_path / "w.npz", ["<eos>", "the", "cat", "sat"], level="word")
    started = []
    monkeypatch.setattr(script, "iter_generate",
                        lambda model, start_ids, *args, **kwargs: started.append(start_ids)
                        or iter([]))
    assert script.main(["--model", path, "--start", "the cat\nsat\r\nthe"]) == 0
    assert started == [[1, 2, 0, 3, 0, 1]]
    # A model that never saw a line end: said so, not "the word '<eos>' is unknown".
    path = model_file(tmp_path / "w1.npz", ["the", "cat", "sat"], level="word")
    assert script.main(["--model", path, "--start", "the cat\n"]) == 2
    assert capsys.readouterr().err == (
        "error: --start holds a line end (or the word <eos>), read as <eos> as in training, and "
        "this model never saw one (its text had no line ends): give the prompt on one line, "
        "without <eos>\n")


def test_a_word_in_another_unicode_form_is_named(tmp_path, capsys):
    path = model_file(tmp_path / "m.npz", ["<eos>", "caf\u00e9", "au", "lait"], level="word")
    script = load_script("generate_text")
    assert script.main(["--model", path, "--start", "cafe\u0301 au"]) == 2
    assert ("the model knows it as c + a + f + é (another Unicode form): give the text in NFC "
            "form") in capsys.readouterr().err
    # The stop suggested is one the script takes.
    assert script.main(["--model", path, "--stop", "cafe\\u0301", "--length", "3"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("--stop 'caf\\xe9'\n")
    assert script.main(["--model", path, "--stop", "caf\\xe9", "--length", "3"]) == 0


# -- 4. a tiny temperature ---------------------------------------------------------------------


def test_a_temperature_near_zero_is_greedy_without_a_warning():
    scores = np.array([1.0, 3.0, 2.5, -4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "overflow encountered in divide" was printed
        for temperature in (1e-320, 5e-324, 1e-300):
            assert _pick(scores, temperature, None, np.random.default_rng(0)) == 1
            assert _pick(scores, temperature, 2, np.random.default_rng(0)) == 1
        model = SimpleRnnlm(6, 3, 4, seed=0)
        assert generate(model, [0], 8, temperature=1e-320) == generate(model, [0], 8,
                                                                       temperature=0)


# -- 5. binary and UTF-32 files given as text --------------------------------------------------


def zip_bytes():
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("book.txt", "a b c\n")
    return raw.getvalue()


def npz_bytes():
    raw = io.BytesIO()
    np.savez(raw, x=np.arange(10))
    return raw.getvalue()


@pytest.mark.parametrize("name, content, message", [
    ("book.txt.gz", gzip.compress(b"a b c\n" * 20),
     r"looks like a gzip file, not text: decompress it first, e\.g\. `gunzip -k .*book\.txt\.gz`"),
    ("book.zip", zip_bytes(), "looks like a zip archive, not text: extract the text file"),
    ("model.npz", npz_bytes(), r"looks like a NumPy \.npz file \(a zip archive of arrays\), "
                               "not text"),
    ("plot.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "looks like a PNG image, not text"),
    ("paper.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
     "looks like a PDF document, not text: extract its text first"),
    ("ids.bin", np.arange(300, dtype=np.int32).tobytes(),
     r"holds a NUL byte \(byte offset 0\).*not read as UTF-8, UTF-16 or UTF-32.*looks like a "
     r"binary "
     "file, not text"),
    ("mixed.bin", b"abc\x00\x01\xff\xfe def", "looks like a binary file, not text"),
], ids=["gzip", "zip", "npz", "png", "pdf", "int32-array", "nul-and-bad-utf8"])
def test_a_binary_file_is_called_binary_not_latin1(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(text.CorpusError, match=message) as info:
        text.load_data(path)
    assert str(path) in str(info.value)
    assert "iconv" not in str(info.value) and "latin" not in str(info.value)


@pytest.mark.parametrize("encoding, source, content", [
    # UTF-32 with a byte-order mark: ff fe 00 00 begins like UTF-16's ff fe.
    ("utf-32", "utf-32", "hello world, caf\u00e9 \U0001f600\n"),
    ("utf-32-le", "utf-32le", "hello world, caf\u00e9 \U0001f600\n"),
    ("utf-32-be", "utf-32be", "hello world, caf\u00e9 \U0001f600\n"),
    ("utf-16", "utf-16", "hello world\n"),
    ("utf-16-le", "utf-16le", "hello world\n"),
    ("utf-16-be", "utf-16be", "hello world\n"),
])
def test_utf32_and_utf16_are_named_as_they_are(tmp_path, encoding, source, content):
    path = tmp_path / "t.txt"
    path.write_bytes(content.encode(encoding))
    with pytest.raises(text.CorpusError) as info:
        text.load_data(path)
    name, other = source[:6].upper(), "UTF-16" if source.startswith("utf-32") else "UTF-32"
    assert name in str(info.value) and other not in str(info.value)
    assert f"iconv -f {source} -t utf-8" in str(info.value)


@pytest.mark.parametrize("content, advice", [
    ("caf\u00e9 na\u00efve\n".encode("latin-1"), "iconv -f latin1 -t utf-8"),
    # Windows quotes are bytes 0x93 and 0x94: in latin1, invisible C1 controls.
    ("\u201cquoted\u201d word\n".encode("cp1252"), "iconv -f cp1252 -t utf-8"),
])
def test_the_advised_conversion_reads_the_bytes_as_the_file_means_them(tmp_path, content,
                                                                       advice):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(text.CorpusError, match="is not valid UTF-8") as info:
        text.load_data(path)
    assert advice in str(info.value)


def test_utf8_with_a_line_of_another_encoding_is_called_mixed_not_converted(tmp_path):
    # Converted whole from latin1, the valid UTF-8 before it would become mojibake.
    path = tmp_path / "t.txt"
    utf8, latin1 = "na\u00efve caf\u00e9\n".encode(), "the end \u00e9t\u00e9\n".encode("latin-1")
    path.write_bytes(utf8 + latin1)
    with pytest.raises(text.CorpusError, match=r"byte offset 21 \(line 2\) holds b'\\xe9'.*"
                                               r"mixes encodings") as info:
        text.load_data(path)
    assert "iconv -f latin1" not in str(info.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="a device that never ends")
def test_a_device_is_refused_not_read_until_memory_runs_out():
    with pytest.raises(text.CorpusError, match="/dev/zero is a character device, not a text "
                                               "file"):
        text.load_data("/dev/zero")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="standard input on /dev/null")
def test_standard_input_with_nothing_piped_in_says_to_pipe_the_text():
    # (A run trained on piped text, resumed without the pipe, was told that /dev/stdin
    # "is a character device, not a text file".)
    code = ("from datasets import text\n"
            "try:\n    text.load_data('/dev/stdin')\n"
            "except text.CorpusError as exc:\n    print(exc)\n")
    with open("/dev/null") as null:
        done = subprocess.run([sys.executable, "-c", code], stdin=null, capture_output=True,
                              text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.startswith("/dev/stdin reads standard input, which is a character "
                                  "device here (nothing is piped in): pipe the text in"), done


def test_text_that_begins_like_a_signature_is_still_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("PK is a word\n%PDF too\n", encoding="utf-8")
    corpus, word_to_id, _ = text.load_data(path)
    assert list(word_to_id)[:2] == ["PK", "is"] and corpus.size == 8
    path.write_text("%PDF-1.7 is a version .\nthe cat sat .\n", encoding="utf-8")
    assert text.load_data(path)[0].size == 11  # (a PDF holds bytes UTF-8 does not)


@pytest.mark.parametrize("data, message", [
    (bytes(4096), "looks like a binary file"),  # a file that lost its data: all zeros
    (np.arange(100, dtype=np.int32).tobytes(), "looks like a binary file"),  # valid UTF-8
    ((np.arange(1000) % 120).astype(np.uint16).tobytes(), "looks like a binary file"),
    (("我们今天去公园散步，天气很好。\n" * 50).encode("utf-16le"), r"looks like UTF-16\)"),
    (b"%PDF-1.1\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n", "a PDF document"),
    (("我们今天去公园散步\n" * 10).encode()[:-2], r"ends in the middle of a UTF-8 character "
                                               r"\(line 10\): a file cut at a byte count"),
    # ASCII, then a Latin-1 byte at the very end: Latin-1 as likely as a cut
    # (it was called a cut alone, without the iconv advice).
    (b"the menu says cafe and then caf\xe9", r"all ASCII: a file of another encoding, such "
                                              r"as Latin-1 .*iconv -f latin1.* or one cut"),
], ids=["zeros", "int32", "uint16", "utf16-cjk-no-mark", "ascii-pdf", "cut-in-a-character",
        "latin1-at-the-end"])
def test_what_a_file_of_nuls_or_a_cut_file_is_called(tmp_path, data, message):
    """From a review of the stray-NUL rule: arrays of small integers are valid
    UTF-8 and were told to 'remove a NUL'; UTF-16 of CJK text has few NULs and
    was called binary; a PDF of ASCII alone was text; a file cut by bytes in a
    character was told to convert itself from Latin-1."""
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    with pytest.raises(text.CorpusError, match=message):
        text.load_data(path, level="char")


def test_a_stray_nul_in_utf8_text_is_named_not_taken_for_utf16(tmp_path):
    """Almost any two bytes read as a CJK letter in UTF-16: one NUL was enough
    for the file to be called UTF-16, and the iconv advised made garbage of it."""
    path = tmp_path / "t.txt"
    for tail in (b"a\0b\nx", b"a\0b\n"):  # both parities of the file's length
        path.write_bytes(b"the cat sat on the mat .\n" * 3 + tail)
        with pytest.raises(text.CorpusError, match=r"holds a NUL byte \(line 4\), which text "
                                                   r"never does: remove it") as info:
            text.load_data(path)
        assert "UTF-16" not in str(info.value) and "binary" not in str(info.value)


def stateless_and_stateful(model, scale):
    """``model`` with its weights scaled (sharp choices) and its recurrent
    layers made stateful=False, and a stateful copy of it."""
    import copy

    for p in model.params:
        p *= scale
    stateful = copy.deepcopy(model)
    for layer in model._recurrent_layers():
        layer.stateful = False
    return model, stateful


def test_the_books_generate_carries_the_state_whatever_the_layers_flags():
    """With stateful=False layers, each one-step predict started from zeros:
    sampling lost its context and the beam held no history (its "best"
    was not the most likely sequence)."""
    from models import RnnlmGen

    model, stateful = stateless_and_stateful(RnnlmGen(4, 3, 5, seed=1, dtype=np.float64), 3)
    for kwargs in (dict(beam_width=16), dict(rng=7)):
        model.reset_state()
        stateful.reset_state()
        assert model.generate(1, sample_size=12 if "rng" in kwargs else 4, **kwargs) == \
            stateful.generate(1, sample_size=12 if "rng" in kwargs else 4, **kwargs)
        assert [layer.stateful for layer in model._recurrent_layers()] == [False]
        for a, b in zip(model.get_state(), stateful.get_state(), strict=True):
            np.testing.assert_array_equal(a, b)  # left where generation ended, as the book's


def test_beam_search_lm_reads_the_prompt_whatever_the_layers_flags():
    """beam_search_lm, called itself (the README names it), started each step
    from zeros when the layers were stateful=False: the prompt and the beam's
    history unread, whatever the prompt the same answer."""
    from models import Rnnlm
    from models.beam_search import beam_search_lm

    model, stateful = stateless_and_stateful(Rnnlm(5, 3, 4, seed=0, dtype=np.float64), 8)
    for prompt in ([1, 2, 3], [3], [4, 0]):
        assert beam_search_lm(model, prompt, 6, 4) == beam_search_lm(stateful, prompt, 6, 4)
    assert [layer.stateful for layer in model._recurrent_layers()] == [False]


def test_the_books_beam_search_takes_no_rng():
    # (rng was ignored, even one that is not a generator: a user meaning to
    # sample would silently get the search.)
    from models import BetterRnnlmGen, RnnlmGen

    for cls in (RnnlmGen, BetterRnnlmGen):
        with pytest.raises(ValueError, match="beam_width .* takes no rng"):
            cls(5, 3, 4, seed=0).generate(1, sample_size=3, beam_width=2, rng=0)


@pytest.mark.parametrize("temperature", [10**400, np.complex128(1 + 5j), 1 + 0j],
                         ids=["10**400", "numpy-complex", "complex"])
def test_a_temperature_beyond_floats_or_complex_is_refused(temperature):
    # (10**400 gave an OverflowError; a NumPy complex was taken, its
    # imaginary part dropped with a ComplexWarning.)
    from models import Rnnlm
    from models.generate import generate

    with pytest.raises(ValueError, match="temperature must be a finite number"):
        generate(Rnnlm(5, 3, 4, seed=0), [1], 3, temperature=temperature, rng=0)


def test_an_optimizer_refuses_a_rate_beyond_floats():
    from common.optimizer import SGD

    with pytest.raises(ValueError, match="lr must be a finite number"):
        SGD(lr=10**400)
