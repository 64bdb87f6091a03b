"""Texts the starter voices never train on, and the choice of their training sentences.

Held out (never sung or spoken in the starter corpus):
* the evaluation corpus' 60 sentences (`../shared/eval/svceval/texts.py`, S000-S059), kept here only as
  hashes of their normalised text (`EVAL_TEXT_HASHES`) so the repo does not carry the evaluation texts;
* the texts of the demo clips (`examples/examples.json`);
* phonevec's held-out sentences (`svc_core.phonevec.corpus`: sentence i of seed 0 with i % 10 == 9, first 3000),
  on which the content encoder is probed;
* the starter's own listening-test list: the first `HELDOUT_SENTENCES` sentences of the starter stream.
Training sentences are the next sentences of `generate_sentences(..., seed=STARTER_SENTENCE_SEED)` that are
not held out, so the same (count, seed) always gives the same list and a longer list extends a shorter one.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from ..phonevec.sentences import generate_sentences

STARTER_SENTENCE_SEED = 4  # phonevec's corpus uses seed 0
HELDOUT_SENTENCES = 24
PHONEVEC_SENTENCES = 3000  # phonevec's held-out sentences are looked up among its first 3000
PHONEVEC_HELDOUT_EVERY = 10
EXAMPLES_MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "examples.json"

EVAL_TEXT_HASHES: frozenset[str] = frozenset((
    "4100347a1e41cdc6", "18fd3913e251c6b5", "13ac7faef49d25ab", "3d2a455d829a752d", "353ebe7176606176", "5c2930ab93f3e467",
    "51be39540aec85bb", "92d0f73e3f2187de", "c11d2ff6086ce8f9", "5b371a3021942bed", "f57be20afa3aa2f7", "a8411d3726dda204",
    "726b35e7750b018f", "95b58defbe3183cd", "f7a55d8239a5fb78", "7000ecad71427add", "35b9addf1ebb4ee4", "8efd06909f34cc38",
    "b44f29ffa4c236f3", "794daea7976469ee", "e36506931317f243", "18c5852b891b0862", "39e74717e2901ec2", "182f65748a316efa",
    "4ae3bc864a5b2bf4", "d8a4581cfaf1a703", "b346ab938d169275", "5d1ed6633d6b7ae8", "6b3fb48ff5332778", "0502cfd1c016d278",
    "61d337e22d0135cc", "c15fd18a59a84e5d", "611fd41d5054c3dd", "deedcd7b2831dc8a", "80a4d6c34e9c31cb", "1a829e757303d3b0",
    "470494b86923cfbf", "eab09b1f129a7a1e", "235da81110116615", "70b5c5d7ab8326e4", "189b7fc0c9746e16", "9109254851174b19",
    "bc80b9ecf2b6a5ca", "3bb7521ab6e75729", "59a1f62b5d142f41", "448c35be583a746c", "1e3e8710de805ba7", "26be415b1eeb2c08",
    "defb2ac70167491d", "00d07f2b3d3bafc4", "da1783e6a22d72c9", "89c2681abbd24700", "de48b28ecbc3e680", "b6bb3aa2715122f4",
    "a4c78ed0233ad2ba", "f2ba456345c0971c", "a102b79ebd055e1c", "bf98c26191130b00", "b88ce96f6e0610e7", "7cddf20685d7bf80",
    
))


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: 'Hello, World!' -> 'hello world'."""
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def text_hash(text: str) -> str:
    """16 hex digits of the sha256 of the normalised text (the form of EVAL_TEXT_HASHES)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


def example_texts() -> tuple[str, ...]:
    """Texts of the committed demo clips (empty when examples/examples.json is absent)."""
    if not EXAMPLES_MANIFEST.is_file():
        return ()
    return tuple(entry["text"] for entry in json.loads(EXAMPLES_MANIFEST.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def phonevec_heldout_texts() -> tuple[str, ...]:
    """phonevec's held-out (probe) sentences."""
    every = PHONEVEC_HELDOUT_EVERY
    return tuple(t for i, t in enumerate(generate_sentences(PHONEVEC_SENTENCES, 0)) if i % every == every - 1)


def excluded_hashes() -> frozenset[str]:
    """Hashes of every evaluation / demo text (not the starter's own held-out list)."""
    return EVAL_TEXT_HASHES | {text_hash(t) for t in example_texts() + phonevec_heldout_texts()}


def select_sentences(n_train: int, seed: int = STARTER_SENTENCE_SEED,
                     n_heldout: int = HELDOUT_SENTENCES) -> tuple[list[str], list[str]]:
    """(training sentences, the starter's held-out sentences): deterministic for (n_train, seed, n_heldout)."""
    excluded = excluded_hashes()
    want = n_heldout + n_train
    count = want + 64
    while True:
        stream = [t for t in generate_sentences(count, seed) if text_hash(t) not in excluded]
        if len(stream) >= want:
            return stream[n_heldout:want], stream[:n_heldout]
        count *= 2


def is_held_out(text: str, starter_heldout: tuple[str, ...] | list[str] = ()) -> bool:
    """True for an evaluation, demo or phonevec probe text, or one of `starter_heldout`."""
    h = text_hash(text)
    return h in excluded_hashes() or h in {text_hash(t) for t in starter_heldout}
