"""Sentences -> phone sequences: espeak-ng's en-us phonemiser, folded into a fixed 41-phone inventory.

    phones = phonemize("The quiet river runs.")    # ['D', '@', 'k', 'w', 'aI', '@', 't', 'r', 'I', 'v', '3', ...]
    ids = PHONE_SET.encode(phones)                  # stable ids 1..41 (0 is the CTC blank)

espeak-ng is run as `espeak-ng -q -x --sep=_ -v en-us TEXT` (Kirshenbaum-style ASCII phoneme names, `_` between
phonemes, spaces between words, `'`/`,` stress marks). Stress is dropped, weak and allophonic variants are folded
into their base phone (`@2`, `a#` -> `@`; `I#`, `I2` -> `I`; `0` -> `A:`; flap `t#` -> `t`) and r-coloured or
compound vowels are split (`A@` -> `A:` `r`; `aI@` -> `aI` `@`; `@L` -> `@` `l`). The inventory and its order are
frozen: ids are part of every phonevec checkpoint (which also stores the list).
"""
from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Sequence

BLANK = "<blank>"

CONSONANTS = ("p", "b", "t", "d", "k", "g", "f", "v", "T", "D", "s", "z", "S", "Z", "h", "tS", "dZ",
              "m", "n", "N", "l", "r", "w", "j")
VOWELS = ("i:", "I", "E", "a", "A:", "O:", "V", "@", "U", "u:", "3", "3:", "eI", "aI", "OI", "aU", "oU")
PHONES: tuple[str, ...] = CONSONANTS + VOWELS  # 41 phones; ids 1..41, blank 0

# espeak-ng en-us phoneme (stress removed) -> one or more inventory phones
FOLD: dict[str, tuple[str, ...]] = {
    "@2": ("@",), "@5": ("@",), "a#": ("@",), "I#": ("I",), "I2": ("I",), "0": ("A:",), "O2": ("O:",),
    "aa": ("a",), "t#": ("t",), "t2": ("t",), "d#": ("d",), "?": ("t",), "n-": ("n",), "r-": ("r",),
    "l-": ("l",), "m-": ("m",), "@L": ("@", "l"), "A@": ("A:", "r"), "o@": ("O:", "r"), "O@": ("O:", "r"),
    "e@": ("E", "r"), "U@": ("U", "r"), "i@3": ("I", "r"), "i@": ("i:", "@"), "aI3": ("aI", "3"),
    "aI@": ("aI", "@"), "aU@": ("aU", "@"), "e": ("eI",), "o": ("oU",), "i": ("i:",), "u": ("u:",),
    "A": ("A:",), "O": ("O:",), "3:r": ("3:", "r"), "e:": ("eI",), "x": ("k",), "W": ("w",), "Q": ("A:",),
}
IGNORED = frozenset({"", ":", ";", "-", "#", "|", "||"})  # length marks, palatalisation, pauses


class PhonemiserError(RuntimeError):
    """espeak-ng is missing or produced a phoneme outside the inventory."""


@dataclass(frozen=True)
class PhoneSet:
    """A fixed phone inventory with the CTC blank at id 0."""

    phones: tuple[str, ...] = PHONES

    @property
    def symbols(self) -> tuple[str, ...]:
        """All output symbols: blank first, then the phones (len = number of CTC classes)."""
        return (BLANK,) + self.phones

    def __len__(self) -> int:
        return len(self.phones) + 1

    def encode(self, phones: Iterable[str]) -> list[int]:
        """Phone names -> ids in 1..len(phones)."""
        index = {p: i + 1 for i, p in enumerate(self.phones)}
        try:
            return [index[p] for p in phones]
        except KeyError as err:
            raise PhonemiserError(f"phone {err.args[0]!r} is not in the phonevec inventory") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """ids (blank allowed and skipped) -> phone names."""
        symbols = self.symbols
        return [symbols[i] for i in ids if i != 0]


PHONE_SET = PhoneSet()


def fold_phoneme(raw: str) -> tuple[str, ...]:
    """One espeak-ng phoneme (stress marks allowed) -> inventory phones; raises PhonemiserError if unknown."""
    name = raw.replace("'", "").replace(",", "").replace("%", "").replace("=", "")
    if name in IGNORED:
        return ()
    if name in PHONE_SET.phones:
        return (name,)
    if name in FOLD:
        return FOLD[name]
    stripped = name.rstrip("#2-;:")
    if stripped and stripped != name:
        return fold_phoneme(stripped)
    raise PhonemiserError(f"espeak-ng phoneme {raw!r} has no place in the phonevec inventory")


def parse_espeak(output: str) -> list[str]:
    """Parse `espeak-ng -x --sep=_` output (words separated by whitespace) into inventory phones."""
    phones: list[str] = []
    for word in output.split():
        for raw in word.split("_"):
            phones.extend(fold_phoneme(raw))
    return phones


def espeak_binary() -> str:
    """Path of espeak-ng; raises PhonemiserError naming the Debian package when it is absent."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise PhonemiserError("espeak-ng was not found; install the Debian package 'espeak-ng'")
    return path


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """English text -> inventory phones via espeak-ng (deterministic for one espeak-ng version)."""
    result = subprocess.run([espeak_binary(), "-q", "-x", "--sep=_", "-v", voice, text],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PhonemiserError(f"espeak-ng failed on {text!r}: {result.stderr.strip()}")
    phones = parse_espeak(result.stdout)
    if not phones:
        raise PhonemiserError(f"espeak-ng gave no phonemes for {text!r}")
    return phones


def phonemize_many(texts: Sequence[str], jobs: int = 1, voice: str = "en-us") -> list[list[str]]:
    """`phonemize` over a list, `jobs` espeak-ng processes at a time; order is kept."""
    if jobs <= 1:
        return [phonemize(t, voice) for t in texts]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda t: phonemize(t, voice), texts))
