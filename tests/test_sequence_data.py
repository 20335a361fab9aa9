"""Tests for datasets.sequence: the textbook's question/answer data for seq2seq models."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datasets import sequence


def decode(ids: np.ndarray, id_to_char: dict[int, str]) -> list[str]:
    return ["".join(id_to_char[int(i)] for i in row) for row in ids]


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def addition():
    data = sequence.load_data("addition")
    return data, sequence.get_vocab()


@pytest.fixture(scope="module")
def date():
    data = sequence.load_data("date")
    return data, sequence.get_vocab()


# ---------------------------------------------------------------------------
# The generated tasks: sizes, formats, determinism


@pytest.mark.parametrize("task, widths", [("addition", (7, 5)), ("date", (29, 11))])
def test_generated_tasks_have_the_books_sizes_and_widths(task, widths, request):
    ((x_train, t_train), (x_test, t_test)), (char_to_id, id_to_char) = request.getfixturevalue(
        task
    )
    q_width, a_width = widths
    assert x_train.shape == (45_000, q_width) and t_train.shape == (45_000, a_width)
    assert x_test.shape == (5_000, q_width) and t_test.shape == (5_000, a_width)
    for a in (x_train, t_train, x_test, t_test):
        assert a.dtype == np.int32 and a.flags.c_contiguous
        assert 0 <= a.min() and a.max() < len(char_to_id)
    # every answer starts with the start symbol '_', and only there
    assert (t_train[:, 0] == char_to_id["_"]).all() and (t_test[:, 0] == char_to_id["_"]).all()
    assert not (x_train == char_to_id["_"]).any()
    assert not (t_train[:, 1:] == char_to_id["_"]).any()


def test_addition_answers_are_the_sums(addition):
    ((x_train, t_train), (x_test, t_test)), (_, id_to_char) = addition
    questions = decode(np.concatenate([x_train, x_test]), id_to_char)
    answers = decode(np.concatenate([t_train, t_test]), id_to_char)
    for question, answer in zip(questions, answers, strict=True):
        # the book's format: left-aligned, padded with spaces ('16+75  ', '_91  ')
        assert re.fullmatch(r"\d{1,3}\+\d{1,3} *", question), question
        assert re.fullmatch(r"_\d{1,4} *", answer), answer
        a, b = question.split("+")
        assert int(answer[1:]) == int(a) + int(b)


def test_addition_pairs_are_drawn_as_in_the_books_file(addition):
    """Each number 1-3 digits, each digit uniform; an unordered pair only once.

    So no test question is a training question in either order, the pairs of
    short numbers run out (all 55 pairs of two one-digit numbers are there, and
    all 900 of a one-digit and a two-digit number), and most pairs hold a
    three-digit number, as in the last lines of the book's addition.txt.
    """
    ((x_train, _), (x_test, _)), (_, id_to_char) = addition
    def pairs(x):
        return [tuple(int(n) for n in q.split("+")) for q in decode(x, id_to_char)]
    train, test = pairs(x_train), pairs(x_test)
    unordered = [tuple(sorted(p)) for p in train + test]
    assert len(set(unordered)) == len(unordered) == 50_000
    digits = Counter(tuple(sorted(len(str(n)) for n in p)) for p in unordered)
    assert digits[(1, 1)] == 55 and digits[(1, 2)] == 900
    with_three_digits = sum(count for key, count in digits.items() if 3 in key)
    assert with_three_digits > 0.75 * 50_000


def test_addition_rejects_more_pairs_than_it_can_draw_distinct():
    with pytest.raises(ValueError, match=r"n_pairs of addition must be <= 250,000"):
        sequence.generate_pairs("addition", 250_001)


# strptime patterns for every rendering in DATE_FORMATS ('%y' pivots like ours: 69 -> 1969)
STRPTIME = {
    "{month} {day}, {year}": "%B %d, %Y",
    "{mon} {day}, {year}": "%b %d, %Y",
    "{day} {mon} {year}": "%d %b %Y",
    "{day} {month} {year}": "%d %B %Y",
    "{weekday}, {month} {day}, {year}": "%A, %B %d, %Y",
    "{wkd}, {mon} {day}, {year}": "%a, %b %d, %Y",
    "{weekday}, {day} {month} {year}": "%A, %d %B %Y",
    "{month} {ordinal}, {year}": "%B %d, %Y",
    "{m}/{day}/{yy}": "%m/%d/%y",
    "{m}/{day}/{year}": "%m/%d/%Y",
    "{dd}.{mm}.{year}": "%d.%m.%Y",
    "{day} {mon} {yy}": "%d %b %y",
}


def parse_date(question: str) -> set[tuple[str, datetime.date]]:
    """Every (format, day) that reads ``question``; the weekday, when written, must agree."""
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", question.strip(), flags=re.IGNORECASE)
    readings = set()
    for fmt, pattern in STRPTIME.items():
        if ("{ordinal}" in fmt) != (text != question.strip()):
            continue
        try:
            day = datetime.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        if "%A" in pattern and not text.lower().startswith(day.strftime("%A").lower()):
            continue
        if "%a" in pattern and not text.lower().startswith(day.strftime("%a").lower()):
            continue
        readings.add((fmt, day))
    return readings


def test_every_date_format_has_a_strptime_reading():
    assert set(STRPTIME) == set(sequence.DATE_FORMATS)
    assert len(sequence.DATE_FORMATS) >= 12


def test_date_formats_write_the_year_last_and_include_the_books():
    """As in the book's date.txt; year-first formats made the task far slower to learn."""
    assert all(fmt.endswith(("{year}", "{yy}")) for fmt in sequence.DATE_FORMATS)
    # Babel's en_US short, medium, long and full formats: the book's four
    books = {"{m}/{day}/{yy}", "{mon} {day}, {year}", "{month} {day}, {year}",
             "{weekday}, {month} {day}, {year}"}
    assert books <= set(sequence.DATE_FORMATS)


def test_date_answers_are_the_iso_dates_of_their_questions(date):
    ((x_train, t_train), _), (_, id_to_char) = date
    questions = decode(x_train[:3_000], id_to_char)
    answers = decode(t_train[:3_000], id_to_char)
    formats_seen = set()
    for question, answer in zip(questions, answers, strict=True):
        readings = parse_date(question)
        days = {day for _, day in readings}
        # exactly one day, whatever format reads it, and it is the answer
        assert days == {datetime.date.fromisoformat(answer[1:])}, (question, answer, readings)
        formats_seen |= {fmt for fmt, _ in readings}
    assert formats_seen == set(sequence.DATE_FORMATS)


def test_dates_cover_the_range_in_three_cases(date):
    ((x_train, t_train), _), (_, id_to_char) = date
    questions = decode(x_train, id_to_char)
    years = np.array([int(a[1:5]) for a in decode(t_train, id_to_char)])
    assert years.min() == 1969 and years.max() == 2068
    worded = [q.strip() for q in questions if re.search(r"[a-zA-Z]", q)]
    assert any(q == q.lower() for q in worded)
    assert any(q == q.upper() for q in worded)
    assert any(q == " ".join(w.capitalize() for w in q.split(" ")) for q in worded)
    assert "TUESDAY" in "".join(questions) and "27Th" not in "".join(questions)


def test_the_same_seed_gives_the_same_data_bit_for_bit():
    first = sequence.load_data("date", seed=7)
    vocab = sequence.get_vocab()
    second = sequence.load_data("date.txt", seed=7)
    assert sequence.get_vocab() == vocab
    assert digest(*first[0], *first[1]) == digest(*second[0], *second[1])
    other = sequence.load_data("date", seed=8)
    assert not np.array_equal(first[0][0], other[0][0])


def test_the_books_file_name_keyword_names_the_data():
    """The book's signature is load_data(file_name='addition.txt', seed=1984)."""
    by_position = sequence.load_data("date.txt", 1984)
    by_book_name = sequence.load_data(file_name="date.txt", seed=1984)
    assert digest(*by_position[0]) == digest(*by_book_name[0])
    with pytest.raises(TypeError, match="give one"):
        sequence.load_data("date", file_name="addition.txt")
    with pytest.raises(TypeError, match="give one"):  # the default's value given, too
        sequence.load_data("addition", file_name="date.txt")


def test_the_default_data_is_pinned():
    """Users' published results depend on these exact pairs: any change shows here."""
    (x, t), (xt, tt) = sequence.load_data("addition")
    assert digest(x, t, xt, tt) == ADDITION_DIGEST
    (x, t), (xt, tt) = sequence.load_data("date")
    assert digest(x, t, xt, tt) == DATE_DIGEST


ADDITION_DIGEST = "2c4a7709fe8274d2cf24d27929f26abe0058d1c794e6d70402cac7899fe5c07e"
DATE_DIGEST = "a75051fa55744864376ae7af4123695de563386513bd08945ca76dceee402e16"


def test_generation_does_not_touch_numpys_global_generator():
    np.random.seed(0)
    expected = np.random.random_sample()
    np.random.seed(0)
    sequence.load_data("addition", seed=3)
    assert np.random.random_sample() == expected


# ---------------------------------------------------------------------------
# Vocabulary


def test_vocab_round_trips_and_follows_first_appearance(addition):
    ((x_train, t_train), _), (char_to_id, id_to_char) = addition
    assert len(char_to_id) == 13  # 0-9, '+', ' ', '_'
    assert {c: i for i, c in id_to_char.items()} == char_to_id
    assert sorted(id_to_char) == list(range(len(id_to_char)))
    # Ids in order of first appearance reading question 0, answer 0, question 1, ...
    generated = sequence.generate_pairs("addition")
    seen = "".join(dict.fromkeys("".join(q + a for q, a in generated)))
    assert "".join(id_to_char[i] for i in range(len(id_to_char))) == seen


def test_get_vocab_is_that_of_the_data_last_loaded(tmp_path):
    sequence.load_data("addition")
    assert "+" in sequence.get_vocab()[0]
    sequence.load_data("date")
    assert "+" not in sequence.get_vocab()[0] and "-" in sequence.get_vocab()[0]
    vocab = sequence.get_vocab()
    vocab[0]["#"] = 99  # a copy: the module's vocabulary stays as loaded
    assert "#" not in sequence.get_vocab()[0]


def test_get_vocab_before_any_load_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sequence, "_last_vocab", None)
    with pytest.raises(RuntimeError, match=r"call sequence\.load_data"):
        sequence.get_vocab()


# ---------------------------------------------------------------------------
# Files: the book's layout and tab-separated pairs


BOOK_LINES = ["16+75  _91  ", "52+607 _659 ", "75+22  _97  ", "706+796_1502", "8+4    _12  "]


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_a_file_in_the_books_layout(tmp_path):
    path = write(tmp_path / "pairs.txt", "\n".join(BOOK_LINES * 4) + "\n")
    with pytest.warns(sequence.SequenceDataWarning, match="2 of the 2 test pairs are also "
                                                          "training pairs"):
        (x_train, t_train), (x_test, t_test) = sequence.load_data(path, seed=None)
    char_to_id, id_to_char = sequence.get_vocab()

    assert x_train.shape == (18, 7) and t_train.shape == (18, 5)
    assert x_test.shape == (2, 7) and t_test.shape == (2, 5)
    # seed=None keeps the file's order, so the rows are the lines
    assert decode(x_train[:5], id_to_char) == [line[:7] for line in BOOK_LINES]
    assert decode(t_train[:5], id_to_char) == [line[7:] for line in BOOK_LINES]
    assert list(char_to_id)[:6] == ["1", "6", "+", "7", "5", " "]


def test_a_file_whose_test_pairs_repeat_training_pairs_is_warned_of(tmp_path):
    """Written twice, a file has a copy of nearly every test pair among the
    training pairs: its test accuracy would not be on unseen pairs."""
    lines = [f"{i}\t{i % 7}" for i in range(100)]
    once = write(tmp_path / "once.tsv", "\n".join(lines))
    twice = write(tmp_path / "twice.tsv", "\n".join(lines * 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sequence.load_data(once)  # distinct pairs: no warning
        sequence.load_data("date")  # the task's chance repeats (5%): none either
    with pytest.warns(sequence.SequenceDataWarning, match=r"twice.tsv: 1\d of the 20 test pairs "
                                                          r"are also training pairs"):
        sequence.load_data(twice)


def test_the_books_layout_with_a_tab_before_the_underscore_is_warned_of(tmp_path):
    """Read as tab-separated (line 1 has a tab), every answer would start '__'."""
    path = write(tmp_path / "pairs.txt", "".join(f"{q}\t_{a}\n" for q, a in
                                                 [("1+2", "3"), ("4+4", "8"), ("9+9", "18")]))
    with pytest.warns(sequence.SequenceDataWarning, match="every answer starts with '_'.*"
                                                          "drop the '_' after each tab"):
        sequence.load_data(path, seed=None)


def test_a_file_is_shuffled_as_the_book_does(tmp_path):
    lines = [f"{i:>3}_{i % 7}" for i in range(40)]
    path = write(tmp_path / "pairs.txt", "\n".join(lines))
    (x_train, _), (x_test, _) = sequence.load_data(str(path), seed=1984)
    _, id_to_char = sequence.get_vocab()

    # The book: np.random.seed(seed); np.random.shuffle(indices); test = last tenth.
    np.random.seed(1984)
    indices = np.arange(40)
    np.random.shuffle(indices)
    order = [int(q) for q in decode(np.concatenate([x_train, x_test]), id_to_char)]
    assert order == indices.tolist()
    assert len(x_test) == 4


@pytest.mark.parametrize("task", ["addition", "date"])
def test_a_generated_task_equals_its_file_in_the_books_layout(task, tmp_path):
    """What load_data generates is exactly what it reads back from the book's file format."""
    pairs = sequence.generate_pairs(task, seed=11)
    path = write(tmp_path / f"{task}.txt", "".join(q + a + "\n" for q, a in pairs))

    from_file = sequence.load_data(path, seed=11)
    file_vocab = sequence.get_vocab()
    generated = sequence.load_data(task, seed=11)
    assert sequence.get_vocab() == file_vocab
    assert digest(*from_file[0], *from_file[1]) == digest(*generated[0], *generated[1])


def test_a_tab_separated_file_round_trips(tmp_path):
    pairs = [("3 cats", "trois chats"), ("a", ""), ("épée", "sword"), ("12", "douze")]
    path = write(tmp_path / "pairs.tsv", "".join(f"{q}\t{a}\n" for q, a in pairs))
    (x_train, t_train), (x_test, t_test) = sequence.load_data(path, seed=None)
    _, id_to_char = sequence.get_vocab()
    questions = decode(np.concatenate([x_train, x_test]), id_to_char)
    answers = decode(np.concatenate([t_train, t_test]), id_to_char)
    assert [q.rstrip() for q in questions] == [q for q, _ in pairs]
    assert [a.rstrip() for a in answers] == ["_" + a for _, a in pairs]
    assert len({len(q) for q in questions}) == 1 and len({len(a) for a in answers}) == 1


def test_windows_line_ends_are_not_part_of_the_answer(tmp_path):
    path = write(tmp_path / "pairs.txt", "\r\n".join(BOOK_LINES) + "\r\n")
    (_, t_train), _ = sequence.load_data(path, seed=None)
    assert t_train.shape[1] == 5 and "\r" not in sequence.get_vocab()[0]


def test_old_mac_line_ends(tmp_path):
    path = write(tmp_path / "pairs.txt", "\r".join(BOOK_LINES) + "\r")
    (x_train, t_train), _ = sequence.load_data(path, seed=None)
    assert len(x_train) == len(BOOK_LINES) - len(BOOK_LINES) // 10 and t_train.shape[1] == 5


def test_a_tab_separated_file_is_padded(tmp_path):
    path = write(tmp_path / "pairs.tsv", "hello\tbonjour\nyes\toui\ncat\tchat\n")
    (x_train, t_train), _ = sequence.load_data(path, seed=None)
    _, id_to_char = sequence.get_vocab()
    assert decode(x_train, id_to_char)[:2] == ["hello", "yes  "]
    assert decode(t_train, id_to_char)[:2] == ["_bonjour", "_oui    "]


def test_a_tab_in_the_first_line_means_tab_separated(tmp_path):
    path = write(tmp_path / "pairs.txt", "1+1\t2\n10+10\t20\n")
    (x_train, t_train), _ = sequence.load_data(path, seed=None)
    assert x_train.shape == (2, 5) and t_train.shape == (2, 3)


@pytest.mark.parametrize("name, lines", [("pairs.txt", BOOK_LINES),
                                         ("pairs.tsv", ["1+1\t2", "10+10\t20", "3+4\t7"])])
def test_empty_lines_are_skipped(tmp_path, name, lines):
    plain = write(tmp_path / ("plain_" + name), "\n".join(lines) + "\n")
    gappy = write(tmp_path / ("gappy_" + name), "\n" + "\n  \n".join(lines) + "\n\r\n\n")
    (x, t), _ = sequence.load_data(plain, seed=None)
    vocab = sequence.get_vocab()
    (x_gappy, t_gappy), _ = sequence.load_data(gappy, seed=None)
    assert sequence.get_vocab() == vocab
    assert np.array_equal(x, x_gappy) and np.array_equal(t, t_gappy)


@pytest.mark.parametrize("line, message", [("\t", "line 3: empty question"),
                                           (" \t ", "line 3: empty question"),
                                           ("\t\t\t", "line 3")])
def test_a_line_of_tabs_in_tab_separated_pairs_is_refused(line, message, tmp_path):
    """A line of spaces only is skipped, but one holding a tab is a pair, as
    "\t5" is (stripping every blank dropped it without a word)."""
    path = write(tmp_path / "pairs.tsv", f"1+1\t2\n10+10\t20\n{line}\n3+4\t7\n")
    with pytest.raises(sequence.SequenceDataError, match=message):
        sequence.load_data(path, seed=None)


def test_a_line_of_blanks_in_the_books_layout_is_skipped(tmp_path):
    """Only tab-separated, a tab makes a line a pair: in the book's layout a
    line an editor left holding a tab is a blank line."""
    plain = write(tmp_path / "plain.txt", "\n".join(BOOK_LINES) + "\n")
    gappy = write(tmp_path / "gappy.txt", "\t\n" + "\n \t\n".join(BOOK_LINES) + "\n\t\n")
    (x, t), _ = sequence.load_data(plain, seed=None)
    (x_gappy, t_gappy), _ = sequence.load_data(gappy, seed=None)
    assert np.array_equal(x, x_gappy) and np.array_equal(t, t_gappy)


def test_a_path_named_like_a_task_is_read_as_a_file(tmp_path, monkeypatch):
    write(tmp_path / "addition.txt", "\n".join(BOOK_LINES))
    monkeypatch.chdir(tmp_path)
    (x_train, _), (x_test, _) = sequence.load_data(Path("addition.txt"))
    assert len(x_train) + len(x_test) == len(BOOK_LINES)
    (x_train, _), _ = sequence.load_data("addition.txt")  # the name: generated
    assert len(x_train) == 45_000


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"is empty"),
        (b"\n\r\n", r"is empty"),
        (("\n".join(BOOK_LINES[:2]) + "\n52+607 91\n").encode(), r"line 3: no '_'"),
        (b"16+75  _91  \n52+607_659 \n", r"line 2: question and answer are 6 and 5 "
                                                 r"characters wide, line 1's are 7 and 5"),
        (b"_91  \n", r"line 1: empty question"),
        (b"16+75  _91\n\xff\n", r"not valid UTF-8: byte offset 11 \(line 2\)"),
        (b"a\tb\nc d\n", r"line 2: no tab in 'c d'; expected question<TAB>answer \(the "
                          r"file is read as tab-separated: line 1 holds a tab\)"),
        (b"a\tb\nc\td\te\n", r"line 2: 2 tabs"),
        (b"a\tb\n\tc\n", r"line 2: empty question"),
        (b"16+75  _91  \n\n52+607_659 \n", r"line 3: question and answer are 6 and 5 "
                                                     r"characters wide, line 1's"),
        # With nothing after '_' the decoder would have no target: not a task.
        (b"16+75_\n2+3  _\n", r"every answer is empty \(only the start symbol '_'"),
        (b"16+75\t\n2+3\t\n", r"every answer is empty"),
        # Spaces are padding: answers of them alone are empty ones (they trained
        # to an accuracy of 1.0), and so is a question of them, in either layout.
        (b"16+75\t \n2+3\t  \n", r"every answer is empty"),
        (b"16+75_  \n2+3  _  \n", r"every answer is empty"),
        (b"16+75  _91  \n       _5   \n", r"line 2: empty question"),
        # The book's layout, then a tab-separated line whose widths happen to match.
        (b"16+75  _91  \n16+75 \t_91  \n", r"line 2: a tab in .*, but line 1 has none: the "
                                                 r"file mixes the book's layout and "
                                                 r"question<TAB>answer lines"),
        # A header over padded lines: it is line 1 that differs, not line 2.
        (b"question_answer\n16+75  _91  \n52+7   _59  \n", r"line 2: question and answer "
         r"are 7 and 5 characters wide, line 1's are 8 and 7, and every line after it is as "
         r"wide as line 2: if line 1, 'question_answer', is a header, remove it; otherwise "
         r"pad it with spaces to the others' widths"),
        # Thai marks combine but have no composed form: no NFC advice, which cannot help.
        ("\u0e01\u0e48_1\n\u0e02_2\n".encode(), r"line 2: question and answer are 1 and 2 "
         r"characters wide, line 1's are 2 and 2; in the book's layout every line is padded"),
        # An accent as a character of its own (decomposed Unicode) looks as wide.
        ("caf\u00e9_1\ncafe\u0301_2\n".encode(), r"line 2: question and answer are 5 and 2 "
         "characters wide, line 1's are 4 and 2\\. Line 2, 'cafe\u0301_2', holds combining "
         r"characters .* composed form \(NFC\)"),
    ],
    ids=["empty", "blank-lines-only", "missing-separator", "ragged", "empty-question",
         "not-utf8", "tsv-no-tab", "tsv-two-tabs", "tsv-empty-question",
         "numbered-as-in-the-file", "no-answers", "tsv-no-answers", "tsv-answers-of-spaces",
         "answers-of-spaces", "question-of-spaces", "layouts-mixed", "header-line",
         "thai-marks", "decomposed-accent"],
)
def test_malformed_files_name_the_file_and_line(tmp_path, content, message):
    path = write(tmp_path / "pairs.txt", content)
    with pytest.raises(sequence.SequenceDataError, match=message) as info:
        sequence.load_data(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)  # one line


def test_questions_that_hold_an_underscore_in_the_books_layout_are_warned_of(tmp_path):
    # Padded to one width, every line cut at its first '_' the same way: the month
    # used to be dropped from every question, without a word.
    lines = [f"{d:02d}_{m:02d}_{m:02d}/{d:02d}" for d in range(1, 29) for m in (1, 5, 9)]
    with pytest.warns(sequence.SequenceDataWarning,
                      match=r"us.txt: every answer holds a second '_', at the same place "
                            r"\(line 1, '01_01_01/01', "
                            r"reads as the question '01' and the answer '_01_01/01'\): .* use "
                            r"question<TAB>answer lines"):
        (x_train, _), _ = sequence.load_data(write(tmp_path / "us.txt", "\n".join(lines)))
    assert x_train.shape[1] == 2


def test_answers_with_a_underscore_of_their_own_are_read_without_a_warning(tmp_path):
    # snake_case answers hold their '_' at many places: nothing is cut off.
    import warnings

    words = ["helloWorld", "getX", "myVarName", "aB", "fooBarBaz", "setY", "isOpen", "readAll",
             "toInt", "nextKeyUp"]
    snake = ["".join(f"_{c.lower()}" if c.isupper() else c for c in w) for w in words]
    lines = [f"{q:<10}_{a:<12}" for q, a in zip(words, snake, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x_train, t_train), _ = sequence.load_data(write(tmp_path / "snake.txt",
                                                         "\n".join(lines)), seed=None)
    assert (x_train.shape[1], t_train.shape[1]) == (10, 13)


def test_a_file_in_the_books_layout_named_tsv_says_why_it_is_read_as_tab_separated(tmp_path):
    path = write(tmp_path / "pairs.tsv", "\n".join(BOOK_LINES))
    with pytest.raises(sequence.SequenceDataError, match=r"line 1: no tab in '16\+75  _91  '; "
                       r"expected question<TAB>answer \(the file is read as tab-separated: "
                       r"its name ends in .tsv\)"):
        sequence.load_data(path)


SUMS = [f"{a}+{b}\t{a + b}" for a, b in zip(range(10, 30), range(40, 60), strict=True)]


def test_a_header_line_is_read_as_a_pair_with_a_warning(tmp_path):
    """Most characters of 'question<TAB>answer' appear on no other line."""
    path = write(tmp_path / "sums.tsv", "\n".join(["question\tanswer", *SUMS]))
    with pytest.warns(sequence.SequenceDataWarning,
                      match=r"sums.tsv, line 1: 'question\\tanswer' holds characters that no "
                            r"other line holds \('aeinoqrstuw'\): if it is a header, remove "
                            r"it; it is read as a question/answer pair"):
        (x_train, _), (x_test, _) = sequence.load_data(path, seed=None)
    assert len(x_train) + len(x_test) == len(SUMS) + 1
    assert "q" in sequence.get_vocab()[0]


WORDS = ["你好\thi", "猫\tcat", "狗\tdog", "水\twater", "火\tfire", "山\tmountain", "人\tman",
         "大\tbig", "小\tsmall", "中\tmiddle", "日\tsun", "月\tmoon"]


@pytest.mark.parametrize("lines", [["99+99\t198", *SUMS], ["12+é\t34", *SUMS],
                                   ["question\tanswer", *SUMS[:8]], WORDS],
                         ids=["the-files-characters", "one-rare-character", "short-file",
                              "rare-characters-everywhere"])
def test_a_first_pair_like_the_others_gives_no_warning(tmp_path, lines):
    """A pair of the file's characters, or with one rare character, is not
    taken for a header; nor is anything in a file of fewer than ten pairs,
    where a pair's own characters are common; nor a first pair whose own
    characters are as many as other pairs' (Chinese words: the warning
    used to come at every run)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sequence.load_data(write(tmp_path / "a.tsv", "\n".join(lines)), seed=None)


def test_one_stray_long_line_is_warned_of_by_its_number(tmp_path):
    """Every pair is padded to the widest: a line of 200 characters among sums
    of 7 made arrays 18 times the pairs' characters, and nothing said why."""
    lines = [*SUMS, "y" * 200 + "\t1", *(f"{a}+{a}\t{2 * a}" for a in range(10, 30))]
    path = write(tmp_path / "sums.tsv", "\n".join(lines))
    with pytest.warns(sequence.SequenceDataWarning,
                      match=r"sums.tsv: every question is padded to the widest and every answer "
                            r"too, and the widest question, line 21's, is 200 characters \(half "
                            r"are at most 5\): the arrays hold 16 times the pairs' characters"
                      ) as caught:
        (x_train, _), _ = sequence.load_data(path, seed=None)
    assert x_train.shape[1] == 200  # (read all the same: the line may be meant)
    assert caught[0].filename == __file__  # the caller's line, not the loader's
    # Answers far wider than most: that side is named (the questions' is not).
    lines = [*SUMS, "1+1\t" + "2" * 200, *(f"{a}+{a}\t{2 * a}" for a in range(10, 30))]
    with pytest.warns(sequence.SequenceDataWarning,
                      match=r"and the widest answer, line 21's, is 200 characters \(half are "
                            r"at most 2\): the arrays"):
        sequence.load_data(write(path, "\n".join(lines)), seed=None)
    # Lengths that vary as sentences do (1 to 12 words) are no stray line: no warning.
    words = "a bb ccc dddd eeeee".split()
    lines = [f"{' '.join(words[:1 + i % 5] * (1 + i % 3))}\t{i}" for i in range(200)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sequence.load_data(write(path, "\n".join(lines)), seed=None)


def test_padding_that_does_not_fit_in_memory_is_refused_before_padding(tmp_path, monkeypatch):
    """Padding 50,001 pairs to one line of 10,000 characters wanted some 20 GiB,
    from a file of 1 MiB: the check of the file's size before reading passed."""
    from common.memory import NotEnoughMemory

    path = write(tmp_path / "sums.tsv", "\n".join([*SUMS, "y" * 200 + "\t1"]))
    padded_chars = 21 * (200 + 3)  # the widest question, and '_' and the widest answer
    monkeypatch.setattr(sequence, "available_bytes",
                        lambda: padded_chars * sequence.PADDED_BYTES_PER_CHAR - 1)
    monkeypatch.setattr(sequence, "_encode", None)  # (not reached)
    with pytest.raises(NotEnoughMemory, match=r"sums.tsv: padding and numbering its 21 pairs "
                                              r"takes about 0 MiB of memory, but only 0 MiB is "
                                              r"available; the widest question, line 21's, is "
                                              r"200 characters \(half are at most 5\): "
                                              r"shorten or remove the longest pairs"):
        sequence.load_data(path)
    assert issubclass(NotEnoughMemory, MemoryError)
    # memory_check=False (train_seq2seq.py --ignore-memory-check): padded all the same,
    # and a MemoryError then says what the padding takes (it blamed the file's size).
    monkeypatch.undo()
    with pytest.warns(sequence.SequenceDataWarning):
        (x_train, _), _ = sequence.load_data(path, memory_check=False)
    assert x_train.shape[1] == 200

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(sequence, "_encode", no_memory)
    with pytest.warns(sequence.SequenceDataWarning), \
            pytest.raises(sequence.PaddingMemoryError,
                          match=r"sums.tsv: ran out of memory: padding and numbering its 21 "
                                r"pairs takes about 0 MiB of memory; the widest question, line "
                                r"21's") as info:
        sequence.load_data(path, memory_check=False)
    assert not isinstance(info.value, NotEnoughMemory)  # the work failed: no refusal
    assert isinstance(info.value, MemoryError)
    monkeypatch.setattr(sequence, "_encode", None)
    # Pairs of one width: no line to blame.
    monkeypatch.setattr(sequence, "available_bytes", lambda: 0)
    with pytest.raises(NotEnoughMemory, match=r"sums.tsv: padding and numbering its 20 pairs "
                                              r"takes about 0 MiB of memory, but only 0 MiB is "
                                              r"available; train on a part of its lines$"):
        sequence.load_data(write(path, "\n".join(SUMS)))


@pytest.mark.parametrize("content, message", [
    ("a\tb\n" + "z" * 100_000 + "\n", r"line 2: no tab in 'z{60}'\.\.\. \(100,000 characters\)"),
    ("16+75  _91  \n" + "z" * 100_000 + "\n", r"line 2: no '_' separating question and "
                                                r"answer in 'z{60}'\.\.\. \(100,000"),
])
def test_a_long_line_is_quoted_cut_short(tmp_path, content, message):
    """A line of 100,000 characters was quoted whole: a message of 100 KB."""
    path = write(tmp_path / "pairs.txt", content)
    with pytest.raises(sequence.SequenceDataError, match=message) as info:
        sequence.load_data(path)
    assert len(str(info.value).replace(str(path), "")) < 300


def test_a_failed_load_keeps_the_previous_vocabulary(tmp_path):
    sequence.load_data("addition")
    vocab = sequence.get_vocab()
    with pytest.raises(ValueError):
        sequence.load_data(write(tmp_path / "bad.txt", "no separator\n"))
    assert sequence.get_vocab() == vocab


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt") as info:
        sequence.load_data(tmp_path / "nope.txt")
    assert "generated tasks" not in str(info.value)  # a path is no task's name
    # A mistyped task's name is looked for as a file; the error names the tasks.
    with pytest.raises(FileNotFoundError, match="the generated tasks are addition, date"):
        sequence.load_data("adition")
    # Nor are './name' and a Path, which name files.
    for path in ("./adition", Path("adition")):
        with pytest.raises(FileNotFoundError) as info:
            sequence.load_data(path)
        assert "generated tasks" not in str(info.value)
    # A link round in a loop is no mistyped name either.
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(FileNotFoundError, match="a link that leads round in a loop") as info:
        sequence.load_data(tmp_path / "loop")
    assert "generated tasks" not in str(info.value)


# ---------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name_or_path": ""}, ValueError, "name_or_path must be"),
        ({"name_or_path": 3}, TypeError, "name_or_path must be .* got int"),
        ({"seed": -1}, ValueError, r"seed must be in 0 \.\. 4294967295, got -1"),
        ({"seed": 2**32}, ValueError, "seed must be in"),
        ({"seed": 1.5}, TypeError, "seed must be an int, got float"),
        ({"seed": True}, TypeError, "seed must be an int, got True"),
        ({"seed": "1984"}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(kwargs, error, message):
    with pytest.raises(error, match=message) as info:
        sequence.load_data(**kwargs)
    assert "\n" not in str(info.value)


def test_numpy_integer_seeds_are_accepted():
    a = sequence.load_data("addition", seed=np.int64(5))
    b = sequence.load_data("addition", seed=5)
    np.testing.assert_array_equal(a[0][0], b[0][0])


def test_generate_pairs_checks_its_arguments():
    with pytest.raises(ValueError, match="task must be one of"):
        sequence.generate_pairs("subtraction")
    with pytest.raises(ValueError, match="n_pairs must be >= 1"):
        sequence.generate_pairs("date", 0)
    assert len(sequence.generate_pairs("date", 3, seed=1)) == 3


def test_the_books_show_addition_dataset_calls_run_unchanged():
    # The book's chapter 7 calls, in its order: NumPy ids index the dicts directly.
    (x_train, t_train), (x_test, t_test) = sequence.load_data("addition.txt", seed=1984)
    char_to_id, id_to_char = sequence.get_vocab()
    assert (x_train.shape, t_train.shape, x_test.shape, t_test.shape) == (
        (45000, 7), (45000, 5), (5000, 7), (5000, 5)
    )
    question = "".join([id_to_char[c] for c in x_train[0]])
    answer = "".join([id_to_char[c] for c in t_train[0]])
    assert int(answer[1:]) == sum(map(int, question.split("+")))  # "494+43 " -> "_537 "
    assert [char_to_id[c] for c in question] == x_train[0].tolist()


def test_trained_widths_reads_what_train_seq2seq_saves():
    assert sequence.trained_widths({"question_width": 7, "answer_width": 5}) == (7, 5)
    # A file saved before the widths were, or edited by hand: nothing to go by.
    assert sequence.trained_widths({}) == (None, None)
    assert sequence.trained_widths({"question_width": "7", "answer_width": True}) == (None, None)
    assert sequence.trained_widths({"question_width": 7.0, "answer_width": 5}) == (None, 5)
    # A question of no character, an answer of its start alone: a damaged file.
    assert sequence.trained_widths({"question_width": 0, "answer_width": 1}) == (None, None)
    assert sequence.trained_widths({"question_width": 1, "answer_width": 2}) == (1, 2)
