"""A deterministic generator of varied English sentences from the word lists in `wordlists.py`.

    generate_sentences(3000, seed=0)  # the same 3000 unique sentences on every machine and Python version

Sentences come from a dozen templates (statements, questions, exclamations, lists with numbers, song-like
lines) filled from the word lists with `random.Random(seed)`, which is stable across Python versions for the
calls used here (`random()`, `randrange`, `choice` on sequences). Duplicates are skipped.
"""
from __future__ import annotations

import hashlib
import random
from typing import Callable

from . import wordlists as W


def _a(rng: random.Random, adjective_p: float = 0.6) -> str:
    """An article + optional adjective + noun phrase, e.g. 'the quiet river' or 'a bottle'."""
    noun = rng.choice(W.NOUNS)
    words = [rng.choice(W.ADJECTIVES), noun] if rng.random() < adjective_p else [noun]
    article = "the" if rng.random() < 0.55 else ("an" if words[0][0] in "aeiou" else "a")
    return f"{article} {' '.join(words)}"


def _statement(rng: random.Random) -> str:
    return f"{rng.choice(W.NAMES)} {rng.choice(W.VERBS_PAST)} {_a(rng)} {rng.choice(W.TIMES)}."


def _place(rng: random.Random) -> str:
    return f"{_a(rng).capitalize()} was {rng.choice(W.PREPOSITIONS)} {rng.choice(W.PLACES)}."


def _question(rng: random.Random) -> str:
    return f"Did {rng.choice(W.NAMES)} {rng.choice(W.VERBS_BASE)} {_a(rng)} {rng.choice(W.TIMES)}?"


def _where(rng: random.Random) -> str:
    return f"Where can we {rng.choice(W.VERBS_BASE)} {_a(rng, 0.8)}?"


def _intransitive(rng: random.Random) -> str:
    return f"{rng.choice(W.NAMES)} {rng.choice(W.INTRANSITIVE)} {rng.choice(W.ADVERBS)} in {rng.choice(W.PLACES)}."


def plural(noun: str) -> str:
    """A simple English plural of the last word: 'box' -> 'boxes', 'cherry' -> 'cherries', 'sheep' -> 'sheep'."""
    head, _, last = noun.rpartition(" ")
    irregular = {"mouse": "mice", "goose": "geese", "sheep": "sheep", "fish": "fish", "tooth": "teeth",
                 "foot": "feet", "wolf": "wolves", "leaf": "leaves"}
    if last in irregular:
        last = irregular[last]
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "o", "u"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _count(rng: random.Random) -> str:
    noun = plural(rng.choice(W.NOUNS))
    return f"We counted {rng.choice(W.NUMBERS)} {rng.choice(W.ADJECTIVES)} {noun} {rng.choice(W.PREPOSITIONS)} " \
           f"{rng.choice(W.PLACES)}."


def _two_clauses(rng: random.Random) -> str:
    return f"{rng.choice(W.NAMES)} {rng.choice(W.INTRANSITIVE)}, and {rng.choice(W.NAMES)} " \
           f"{rng.choice(W.VERBS_PAST)} {_a(rng)}."


def _exclaim(rng: random.Random) -> str:
    adjective, noun = rng.choice(W.ADJECTIVES), rng.choice(W.NOUNS)
    if rng.random() < 0.5:
        return f"What {'an' if adjective[0] in 'aeiou' else 'a'} {adjective} {noun} that is!"
    return f"How {adjective} the {noun} looks!"


def _wish(rng: random.Random) -> str:
    return f"I {rng.choice(W.ADVERBS)} {rng.choice(W.VERBS_BASE)} {_a(rng)} when I visit {rng.choice(W.PLACES)}."


def _song(rng: random.Random) -> str:
    line = rng.choice(W.SINGING_LINES)
    return f"{line.capitalize()}, {rng.choice(W.SINGING_LINES)}, {_a(rng, 0.9)} {rng.choice(W.ADVERBS)}."


def _compare(rng: random.Random) -> str:
    return f"{_a(rng, 0.0).capitalize()} seems more {rng.choice(W.ADJECTIVES)} than {_a(rng, 0.0)}."


def _because(rng: random.Random) -> str:
    return f"{rng.choice(W.NAMES)} {rng.choice(W.INTRANSITIVE)} because {_a(rng, 0.5)} {rng.choice(W.INTRANSITIVE)}."


TEMPLATES: tuple[Callable[[random.Random], str], ...] = (
    _statement, _place, _question, _where, _intransitive, _count, _two_clauses, _exclaim, _wish, _song,
    _compare, _because,
)


def generate_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` unique sentences, the same for the same (count, seed); a longer list extends a shorter one."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise RuntimeError(f"the word lists cannot make {count} unique sentences")
        template = TEMPLATES[rng.randrange(len(TEMPLATES))]
        sentence = template(rng)
        sentence = sentence[0].upper() + sentence[1:]
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
    return out


def sentences_hash(sentences: list[str]) -> str:
    """A short stable fingerprint of a sentence list (stored in corpus manifests)."""
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()[:16]
