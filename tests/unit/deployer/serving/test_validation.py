import pytest

from services.deployer.serving.config import ServingConfig
from services.deployer.serving.validation import check_goal, check_top_k, clean_text
from services.kernel.errors import InvalidInput

CONFIG = ServingConfig(max_text_chars=50, max_text_bytes=80)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("x" * 51, "51 characters"),
    ("é" * 41, "82 UTF-8 bytes"),
    ("card\x00lost", "U+0000"),
    ("card\x1blost", "U+001B"),
    ("card\x85lost", "U+0085"),
    ("card\u200blost", "zero-width character U+200B"),
    ("pay\ufeff", "U+FEFF"),
    ("abc\u202edcba", "bidi control U+202E"),
    ("abc\u2066x\u2069", "bidi control U+2066"),
    ("lone \ud800 surrogate", "U+D800"),
])
def test_hostile_text_is_refused_with_a_reason(text, fragment):
    with pytest.raises(InvalidInput, match=fragment.replace("+", r"\+")):
        clean_text(text, CONFIG)


def test_ordinary_text_passes_unchanged_including_tabs_newlines_and_emoji():
    text = "I lost my card\tin Zürich\n😀 what now?"
    assert clean_text(text, CONFIG) == text


def test_strip_mode_removes_invisible_characters_but_still_rejects_controls():
    strip = ServingConfig(invisible_chars="strip")
    assert clean_text("card\u200b lost\u202e", strip) == "card lost"
    with pytest.raises(InvalidInput, match="empty"):
        clean_text("\u200b\u200d", strip)
    with pytest.raises(InvalidInput, match="U\\+0000"):
        clean_text("a\x00", strip)


@pytest.mark.parametrize("goal", ["", "Banking", "../etc", "a" * 64, "bank ing"])
def test_bad_goal_names_are_refused(goal):
    with pytest.raises(InvalidInput):
        check_goal(goal)


def test_top_k_defaults_to_three_and_is_bounded():
    assert check_top_k(0, CONFIG) == 3
    assert check_top_k(5, CONFIG) == 5
    with pytest.raises(InvalidInput):
        check_top_k(-1, CONFIG)
    with pytest.raises(InvalidInput):
        check_top_k(CONFIG.max_top_k + 1, CONFIG)
