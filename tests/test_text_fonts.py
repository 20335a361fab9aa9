"""The characters of a figure's texts are drawn from fonts that hold them.

An attention heat map of Chinese pairs (``train_seq2seq.py
--attention-plot``) or a unit heat map of Japanese text (``inspect_model.py
units --png``) drew every character as an empty box, with one matplotlib
warning a character (20 for three panels), though the machine may have a
font that holds them: matplotlib's own DejaVu has none, and it only falls
back to families named in the text's list. ``common.plot.text_fonts`` adds
the installed fonts that hold what the base fonts lack, and says once which
characters no installed font holds. Here the installed fonts are
matplotlib's own (DejaVu, STIX), the same on every machine: STIX holds
``ᶁ`` (U+1D81), which DejaVu lacks; none holds ``日``.
"""

import os
import warnings

import numpy as np
import pytest
from matplotlib import font_manager

from common import plot
from common.attention_map import plot_attention
from common.plot import MONOSPACE, SANS, text_fonts

STIX_ONLY = "\u1d81"  # ᶁ: in STIXGeneral, not in DejaVu Sans or DejaVu Sans Mono
NOWHERE = "日本"


@pytest.fixture
def matplotlibs_fonts(monkeypatch):
    """Only the fonts matplotlib brings count as installed; the process has
    not warned yet."""
    own = os.path.dirname(font_manager.findfont("DejaVu Sans"))
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [e for e in font_manager.fontManager.ttflist
                         if os.path.dirname(e.fname) == own])
    monkeypatch.setattr(plot, "_warned_of_missing_glyphs", [])


def drawn_warnings(draw):
    """The warnings ``draw()`` gives (all of them, also repeats)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return [str(w.message) for w in caught]


def test_text_the_base_fonts_hold_keeps_the_base(matplotlibs_fonts):
    assert text_fonts(["abc", "é ∑ א"]) == MONOSPACE
    assert text_fonts(["Seq2seq on pairs.tsv"], SANS) == SANS


def test_a_character_the_base_lacks_comes_from_a_font_that_holds_it(matplotlibs_fonts):
    families = text_fonts(["a", STIX_ONLY])
    assert families[:2] == MONOSPACE and "STIXGeneral" in families
    path = font_manager.findfont(font_manager.FontProperties(family=[families[-1]]))
    assert ord(STIX_ONLY) in plot._charmap(path)


def test_characters_no_font_holds_are_said_once(matplotlibs_fonts, tmp_path):
    weights = np.full((2, 3), 1 / 3)
    first = drawn_warnings(lambda: plot_attention(weights, ["日", "本", "a"], ["a", "本"],
                                                  path=tmp_path / "a.png",
                                                  title="日本a -> a本"))
    assert first == ["no installed font holds 2 of the characters drawn (日本): they show as "
                     "boxes; install a font that has them (for Chinese, Japanese and Korean: "
                     "Noto Sans CJK)"]  # and not matplotlib's one warning a glyph
    assert (tmp_path / "a.png").stat().st_size > 1000
    again = drawn_warnings(lambda: plot_attention(weights, list("語本a"), ["a", "語"],
                                                  path=tmp_path / "b.png"))
    assert again == []


def test_a_heat_map_of_text_only_stix_holds_draws_without_warnings(matplotlibs_fonts,
                                                                   tmp_path):
    weights = np.full((2, 2), 0.5)
    said = drawn_warnings(lambda: plot_attention(weights, [STIX_ONLY, "a"], ["b", STIX_ONLY],
                                                 path=tmp_path / "s.png"))
    assert said == []
