"""Sentences and phonemiser: deterministic text, stable phone ids, espeak-ng output folded into the inventory."""
from __future__ import annotations

import shutil

import pytest

from svc_core.phonevec.sentences import generate_sentences, plural, sentences_hash
from svc_core.phonevec.text import (BLANK, PHONE_SET, PHONES, PhonemiserError, fold_phoneme, parse_espeak,
                                    phonemize, phonemize_many)


def test_inventory_ids_are_frozen() -> None:
    assert len(PHONES) == 41 and len(set(PHONES)) == 41
    assert len(PHONE_SET) == 42 and PHONE_SET.symbols[0] == BLANK
    # ids are stored in checkpoints: these must never move
    assert PHONE_SET.encode(["p", "j", "i:", "oU"]) == [1, 24, 25, 41]
    assert PHONE_SET.decode([0, 1, 0, 24, 41]) == ["p", "j", "oU"]


def test_fold_and_parse() -> None:
    assert fold_phoneme("'@2") == ("@",)
    assert fold_phoneme(",A@") == ("A:", "r")
    assert fold_phoneme("t#") == ("t",)
    assert fold_phoneme(":") == ()
    assert parse_espeak("D_@2 k_w_'aI@_t\nr_'I_v_3") == ["D", "@", "k", "w", "aI", "@", "t", "r", "I", "v", "3"]
    with pytest.raises(PhonemiserError):
        fold_phoneme("Q!")


def test_sentences_are_deterministic_and_unique() -> None:
    a = generate_sentences(300, seed=0)
    assert a == generate_sentences(300, seed=0)
    assert a[:100] == generate_sentences(100, seed=0)  # a longer list extends a shorter one
    assert len(set(a)) == 300 and all(s[0].isupper() and s[-1] in ".?!" for s in a)
    assert generate_sentences(300, seed=1) != a
    assert sentences_hash(a) == sentences_hash(list(a)) != sentences_hash(a[:-1])
    assert [plural(w) for w in ("box", "cherry", "mouse", "sugar bowl", "day")] == \
        ["boxes", "cherries", "mice", "sugar bowls", "days"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_phonemize_gives_stable_ids() -> None:
    phones = phonemize("The quiet boy measured a treasure.")
    assert phones == ["D", "@", "k", "w", "aI", "@", "t", "b", "OI", "m", "E", "Z", "3", "d", "@", "t", "r", "E",
                      "Z", "3"]
    ids = PHONE_SET.encode(phones)
    assert ids == PHONE_SET.encode(phonemize("The quiet boy measured a treasure."))
    assert all(1 <= i < len(PHONE_SET) for i in ids)
    texts = generate_sentences(40)
    assert phonemize_many(texts, jobs=2) == phonemize_many(texts, jobs=1)
