"""Tests for the emulator's token counting rule and text generator (emulator/tokens.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from emulator.tokens import TextGenerator, count_tokens, join_pieces


def _is_letter(ch: str) -> bool:
    return ch.isalnum() and not ch.isdecimal()


def _is_digit(ch: str) -> bool:
    return ch.isdecimal()


def reference_count(text: str) -> int:
    """The documented rule, spelled out character by character."""
    n, i, end = 0, 0, len(text)
    while i < end:
        while i < end and text[i].isspace():
            i += 1
        n += 1
        if i == end:  # trailing whitespace with nothing after it
            break
        c = text[i]
        if _is_letter(c):
            run, limit = _is_letter, 4
        elif c.isdecimal():
            run, limit = _is_digit, 3
        else:
            i += 1
            continue
        j = i
        while j < end and j - i < limit and run(text[j]):
            j += 1
        i = j
    return n


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        (" ", 1),
        ("   \n\t ", 1),  # whitespace only: one trailing-whitespace token
        ("What is the meaning of life?", 8),  # What| is| the| mean|ing| of| life|?
        ("hello world", 4),  # hell|o| worl|d: the space goes with the first piece
        ("internationalization", 5),  # 20 letters = 5 pieces of 4
        ("a  b", 2),  # a|  b: a whitespace run attaches to what follows
        ("2024", 2),  # 202|4
        ("600,000 tokens", 5),  # 600|,|000| toke|ns
        ("3.14159", 4),  # 3|.|141|59
        ("ab12cd", 3),  # ab|12|cd: letters and digits never share a token
        ("don't panic!\n", 7),  # don|'|t| pani|c|!|\n
        ("x\t", 2),  # x|\t
        ("snake_case", 4),  # snak|e|_|case: underscore is "other"
        ("--->", 4),  # each symbol is its own token
        ("café naïveté", 3),  # café| naïv|eté: Unicode letters are letters
        ("日本語です", 2),  # 日本語で|す
        ("x²", 1),  # ² is alphanumeric but not a decimal digit, so a letter
        ("١٢٣٤", 2),  # Arabic-Indic digits are decimal digits: ١٢٣|٤
        ("cafe\u0301", 2),  # cafe|◌́: no normalisation; a combining mark is "other"
        ("ok 👍🏽", 3),  # ok| 👍|🏽
    ],
)
def test_documented_examples(text: str, expected: int) -> None:
    assert count_tokens(text) == expected
    assert reference_count(text) == expected


# Characters from every class, weighted toward the boundaries between them.
_mixed_text = st.text(
    alphabet=st.sampled_from("abcdeXYZé日²0123456789٣ \t\n\u00a0.,'_-!😀\u0301") | st.characters(),
    max_size=200,
)


@given(_mixed_text)
def test_regex_matches_the_documented_rule(text: str) -> None:
    assert count_tokens(text) == reference_count(text)


@given(_mixed_text, _mixed_text)
def test_counting_is_subadditive_and_bounded(a: str, b: str) -> None:
    assert count_tokens(a + b) <= count_tokens(a) + count_tokens(b)
    assert count_tokens(a) <= len(a)
    assert (count_tokens(a) == 0) == (a == "")


def test_long_texts_are_counted_the_same_through_the_cache() -> None:
    text = "The quick brown fox jumps over the lazy dog 42 times. " * 100
    first = count_tokens(text)
    assert first == reference_count(text)
    assert count_tokens("".join(list(text))) == first  # an equal but distinct string object


def test_english_prose_is_about_four_characters_per_token() -> None:
    paragraph = (
        "When integrating large language models into production systems, understanding their "
        "performance characteristics is critical for both technical and business success. "
        "Performance testing becomes even more important when the model is served by a managed "
        "service with quotas on tokens and requests per minute, because the quota, the prompt "
        "size and the number of concurrent users together decide whether the application meets "
        "its latency targets. In this study we measured how throughput and response times "
        "change as the number of simultaneous requests grows, for a short prompt and for a "
        "long one, and we explain how the results support a request for a higher quota."
    )
    chars_per_token = len(paragraph) / count_tokens(paragraph)
    assert 3.0 < chars_per_token < 5.5


@given(seed=st.integers(), key=st.text(max_size=30), n=st.integers(0, 2000))
def test_generated_text_counts_back_to_n(seed: int, key: str, n: int) -> None:
    pieces = TextGenerator(seed).pieces(key, n)
    assert len(pieces) == n
    assert count_tokens(join_pieces(pieces)) == n
    assert all(count_tokens(p) == 1 for p in pieces)


@given(
    seed=st.integers(),
    key=st.text(max_size=30),
    n=st.integers(0, 500),
    data=st.data(),
)
def test_prefix_property_and_additivity(seed: int, key: str, n: int, data: st.DataObject) -> None:
    gen = TextGenerator(seed)
    pieces = gen.pieces(key, n)
    m = data.draw(st.integers(0, n), label="m")
    assert gen.pieces(key, m) == pieces[:m]
    head, tail = join_pieces(pieces[:m]), join_pieces(pieces[m:])
    assert count_tokens(head) + count_tokens(tail) == count_tokens(head + tail) == n


def test_generation_is_deterministic_and_keyed() -> None:
    a = TextGenerator(7).pieces("req-1", 300)
    assert TextGenerator(7).pieces("req-1", 300) == a  # a fresh generator, same text
    assert TextGenerator(7).pieces("req-2", 300) != a
    assert TextGenerator(8).pieces("req-1", 300) != a


def test_pinned_output_is_stable_across_versions() -> None:
    # Recorded once; a change here changes every emulator transcript, so it must be deliberate.
    expected = "Most well home. Open more just well they what. Look"
    assert join_pieces(TextGenerator(42).pieces("example", 12)) == expected


def test_generated_text_looks_like_english() -> None:
    pieces = TextGenerator(1).pieces("shape", 5000)
    first = pieces[0]
    assert first[0].isupper() and " " not in first
    marks = (".", ",")
    assert 0.03 < sum(p in marks for p in pieces) / len(pieces) < 0.15
    for prev, cur in itertools.pairwise(pieces):
        assert not (prev in marks and cur in marks)  # never two punctuation pieces in a row
        if prev == ".":
            assert cur[1].isupper()
        if cur not in marks:
            assert cur.startswith(" ") and cur[1:].isalpha() and len(cur) <= 5


def test_invalid_n_is_rejected() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        TextGenerator(0).pieces("k", -1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), key=st.text(max_size=20), n=st.integers(0, 40_000))
def test_excerpt_counts_exactly_n_tokens_even_when_it_wraps(seed: int, key: str, n: int) -> None:
    gen = TextGenerator(seed)
    pieces = gen.excerpt(key, n)
    assert len(pieces) == n
    assert count_tokens("".join(pieces)) == n
    assert gen.excerpt(key, n // 2) == pieces[: n // 2]
    assert TextGenerator(seed).excerpt(key, n) == pieces
