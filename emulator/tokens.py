"""Deterministic token counting and text generation for the emulator (no tokenizer downloads).

Counting rule
-------------
``count_tokens`` splits text into tokens, left to right, and returns how many there are. A token
is optional leading whitespace followed by exactly one of:

1. a run of 1–4 **letters** — a longer run of letters is cut into 4-letter pieces from the left,
   and the leading whitespace belongs to the first piece;
2. a run of 1–3 **decimal digits** — a longer number is cut into 3-digit pieces from the left;
3. one **other** non-whitespace character (punctuation, symbols, ``_``, emoji, combining marks).

Whitespace at the very end of the text, with nothing after it, is one more token. So every
character belongs to exactly one token, the empty string has 0 tokens and a whitespace-only
string has 1. The character classes are Python's: whitespace is ``str.isspace``, a decimal
digit is ``str.isdecimal``, and a letter is any other alphanumeric character (``str.isalnum``):
every Unicode letter, plus rare numeric signs such as ``²`` or ``½``. Text is counted as given,
without Unicode normalisation. Worked examples::

    "What is the meaning of life?"  What| is| the| mean|ing| of| life|?    -> 8
    "hello world"                   hell|o| worl|d                         -> 4
    "600,000 tokens"                600|,|000| toke|ns                     -> 5
    "don't panic!\\n"                don|'|t| pani|c|!|\\n                   -> 7

The rule approximates BPE tokenizers on English prose (about 4 characters per token) without
imitating any real model's vocabulary: the emulator only needs counts that are plausible,
deterministic and consistent between the usage it reports and the text it sends.

Text generation
---------------
``TextGenerator(seed).pieces(key, n)`` returns ``n`` English-looking pieces, each exactly one
token under the rule above, so the emulator can stream one piece per output token and the text
it sends counts back to the usage it reports. The first piece is a capitalised word with no
leading space; every later piece is a space plus a 1–4 letter word from a fixed vocabulary, or
(about one piece in ten, never twice in a row) a bare ``.`` or ``,``; a word after ``.`` is
capitalised. Because no piece starts with a letter or digit except the first, adjacent pieces
never merge into one token, so ``count_tokens(join_pieces(pieces(key, n))) == n``.

The pieces depend only on ``(seed, key, n)`` — not on the process, platform or Python version
(``random.Random`` seeded from bytes is stable, and only ``random()`` is drawn) — and piece ``i``
does not depend on ``n``: ``pieces(key, n)[:m] == pieces(key, m)`` for every ``m <= n``.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from typing import Final

__all__ = ["TextGenerator", "count_tokens", "join_pieces"]

# Possessive quantifiers: a token never needs to give characters back, and not backtracking
# over long whitespace runs keeps the scan linear.
_TOKEN: Final = re.compile(r"\s*+(?:[^\W\d_]{1,4}+|\d{1,3}+|\S)|\s+\Z")

# Prompts repeat (a benchmark sends the same prompt set over and over) and a long one costs
# ~0.25 µs per token to scan, i.e. milliseconds of event-loop time per request; hashing it for a
# cache lookup is ~100x cheaper. Short texts are counted directly: hashing would not pay off.
# When full the cache is cleared rather than trimmed: clear() is atomic, so threads may share it.
_CACHE_MIN_CHARS: Final = 512
_CACHE_MAX_ENTRIES: Final = 128
_cache: dict[str, int] = {}


def count_tokens(text: str) -> int:
    """Return the number of tokens in ``text`` under the rule in the module docstring."""
    if len(text) < _CACHE_MIN_CHARS:
        # subn with an empty replacement counts matches without building a list of them.
        return _TOKEN.subn("", text)[1]
    n = _cache.get(text)
    if n is None:
        n = _TOKEN.subn("", text)[1]
        if len(_cache) >= _CACHE_MAX_ENTRIES:
            _cache.clear()
        _cache[text] = n
    return n


def join_pieces(pieces: Sequence[str]) -> str:
    """Concatenate generated pieces into the text they spell."""
    return "".join(pieces)


# Common English words of 1–4 letters, so each is one token; the sampling is uniform over them.
# fmt: off
_WORDS: Final = (
    "the", "and", "of", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "as", "with", "his", "they", "I", "at", "be", "this", "have", "from", "or", "one",
    "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said",
    "use", "an", "each", "she", "do", "how", "if", "will", "up", "out", "many", "then", "them",
    "so", "some", "her", "make", "like", "him", "into", "time", "has", "look", "two", "more", "go",
    "see", "no", "way", "my", "than", "been", "call", "who", "its", "now", "find", "long", "down",
    "day", "did", "get", "come", "made", "may", "part", "over", "new", "life", "mind", "work",
    "year", "good", "very", "just", "name", "hand", "high", "kind", "real", "less", "most", "such",
    "also", "back", "only", "well", "even", "much", "both", "last", "here", "open", "body", "fact",
    "plan", "data", "load", "rate", "test", "our", "must", "feel", "home",
)
# fmt: on
_SPACED: Final = tuple(" " + w for w in _WORDS)
_CAPITAL: Final = tuple(" " + w[0].upper() + w[1:] for w in _WORDS)
_FIRST: Final = tuple(w[0].upper() + w[1:] for w in _WORDS)
_N_WORDS: Final = len(_WORDS)
# A draw below _P_PUNCT after a word yields punctuation: "." below _P_PERIOD, else ",".
_P_PERIOD: Final = 0.06
_P_PUNCT: Final = 0.10


_CORPUS_LEN: Final = 16_384


class TextGenerator:
    """Deterministic English-looking output text, one token per piece (see the module docstring).

    ``seed`` fixes the text of every key; ``key`` (for example a request id) picks one stream.
    """

    __slots__ = ("_corpus", "_seed")

    def __init__(self, seed: int) -> None:
        """Create a generator whose output is fully determined by ``seed``."""
        self._seed = seed
        self._corpus: list[str] | None = None

    def excerpt(self, key: str, n: int) -> list[str]:
        """Like ``pieces`` (n one-token pieces, concatenation counts n, prefix property), but in
        O(n) list copying instead of O(n) random draws: a slice of one seeded corpus, starting
        at a place chosen by ``key``. The live server uses it so that admitting a burst of
        requests costs microseconds each."""
        if n < 0:
            raise ValueError(f"n must be >= 0 (the number of tokens to generate); got {n}")
        corpus = self._corpus
        if corpus is None:
            corpus = self.pieces("corpus", _CORPUS_LEN)
            corpus[0] = " " + corpus[0]  # so that the corpus can wrap around without merging
            self._corpus = corpus
        start = zlib.crc32(key.encode("utf-8", "surrogatepass")) % _CORPUS_LEN
        out = corpus[start : start + n]
        while len(out) < n:
            out.extend(corpus[: n - len(out)])
        return out

    @property
    def seed(self) -> int:
        """The seed this generator was created with."""
        return self._seed

    def pieces(self, key: str, n: int) -> list[str]:
        """Return ``n`` one-token pieces for ``key``; their concatenation has exactly ``n`` tokens.

        Raises ValueError if ``n`` is negative.
        """
        if n <= 0:
            if n < 0:
                raise ValueError(f"n must be >= 0 (the number of tokens to generate); got {n}")
            return []
        # Seeding from bytes is stable across Python versions; surrogatepass accepts any str key.
        rnd = random.Random(f"{self._seed}:{key}".encode("utf-8", "surrogatepass")).random
        out = [_FIRST[int(rnd() * _N_WORDS)]]
        append = out.append
        after_word = True
        words = _SPACED
        # One uniform draw per piece: a low draw after a word is punctuation; any other draw
        # picks the word, so the state carried between pieces is just these two variables.
        for _ in range(n - 1):
            r = rnd()
            if r < _P_PUNCT and after_word:
                if r < _P_PERIOD:
                    append(".")
                    words = _CAPITAL
                else:
                    append(",")
                after_word = False
            else:
                append(words[int(r * _N_WORDS)])
                words = _SPACED
                after_word = True
        return out
