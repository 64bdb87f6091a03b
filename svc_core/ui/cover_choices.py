"""What the Cover tab offers: the separators that can run here (built-ins and the community model files found in
the separation models folder), each labelled with its quality and speed, and the stem formats. No Gradio here.

A community model is offered as "<family>:<file name relative to the folder>"; a value that is not in the fresh
listing is refused, so an API caller can never point the server at a file of its choosing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..cover.request import EXPORT_FORMATS as STEM_FORMATS
from ..errors import OptionError
from ..separation.registry import (DEFAULT_SEPARATOR, list_separators, models_dir, separator_entry,
                                   separator_status)

log = logging.getLogger("svc_core.ui")

DEFAULT_FORMATS = ("wav",)
COMMUNITY_SEPARATOR = "{family}:{file}"  # a community model's choice value
NO_SEPARATOR_NOTE = ("No separator can run here: the built-in network and the DSP baselines need torch / librosa "
                     "(see About / Status).")


@dataclass(frozen=True)
class SeparatorChoice:
    """One entry of the separator menu."""

    value: str  # what the page and the API send: a registry name, or "<family>:<file>" for a community model
    label: str  # what the menu shows: name, then quality / speed
    name: str  # the registry name (svc_core.separation.registry)
    kind: str  # "network", "dsp", "community"
    model_path: Path | None = None  # a community model's file
    short: str = ""  # the name alone (logs, the summary)


def _builtin_choices(status: dict[str, str | None]) -> list[SeparatorChoice]:
    choices = []
    for name in list_separators():
        entry = separator_entry(name)
        if entry.kind == "community" or status.get(name) is not None:
            continue
        label = entry.label + (f": {entry.description}" if entry.description else "")
        choices.append(SeparatorChoice(name, label, name, entry.kind, short=entry.label))
    choices.sort(key=lambda c: c.name != DEFAULT_SEPARATOR)  # the default first, then the registry's order
    return choices


def _community_choices(folder: Path, status: dict[str, str | None]) -> list[SeparatorChoice]:
    """The model files svc_core.separation.community.files finds in `folder` (none when that package or the
    folder is absent), for the families that can run here."""
    if not folder.is_dir():
        return []
    try:
        from ..separation.community.files import find_model_files
    except ImportError:  # this build has no community families
        return []
    try:
        found = find_model_files(folder)
    except Exception as err:  # noqa: BLE001 - a broken folder must not take the page down; the log says why
        log.warning("separation models folder %s could not be listed: %s", folder, err)
        return []
    choices = []
    for family, path, label in found:
        try:
            entry = separator_entry(family)
        except OptionError:
            continue
        if status.get(family) is not None:
            continue
        path = Path(path)
        try:
            relative = path.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:  # outside the folder (a link): not offered
            continue
        name = label or f"{entry.label}: {path.stem}"
        text = f"{name} ({path.name})" + (f": {entry.description}" if entry.description else "")
        choices.append(SeparatorChoice(COMMUNITY_SEPARATOR.format(family=family, file=relative), text, family,
                                       "community", path, short=name))
    return choices


def separator_choices(folder: Path | None = None) -> list[SeparatorChoice]:
    """Every separator that can run here: the built-ins (default first), then the community files of `folder`
    (default: registry.models_dir(), i.e. $SVC_SEPARATION_DIR or ./separation_models)."""
    status = separator_status()
    return _builtin_choices(status) + _community_choices(models_dir(folder), status)


def resolve_separator(value: str | None, choices: Sequence[SeparatorChoice]) -> SeparatorChoice:
    """The menu entry of `value` (a registry name or "<family>:<file>"); OptionError listing the choices."""
    wanted = (value or "").strip()
    for choice in choices:
        if choice.value == wanted:
            return choice
    if not choices:
        raise OptionError(NO_SEPARATOR_NOTE)
    listed = ", ".join(c.value for c in choices)
    if wanted in list_separators() and separator_entry(wanted).kind == "community":
        raise OptionError(f"The '{wanted}' separator needs a model file: choose one of the files found in the "
                          f"separation models folder ({listed}).")
    raise OptionError(f"Unknown separator '{wanted}'. Choose one of: {listed}.")


def check_formats(formats: Sequence[str] | str | None) -> tuple[str, ...]:
    """The stem formats asked for, lower-case and without repeats; OptionError for none or an unknown one."""
    if isinstance(formats, str):
        formats = [f for f in formats.replace(",", " ").split() if f]
    names = tuple(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in formats or ()))
    if not names:
        raise OptionError(f"Choose at least one output format: {', '.join(STEM_FORMATS)}.")
    unknown = [f for f in names if f not in STEM_FORMATS]
    if unknown:
        raise OptionError(f"Unknown output format {', '.join(repr(f) for f in unknown)}; choose from "
                          f"{', '.join(STEM_FORMATS)}.")
    return names


@dataclass(frozen=True)
class SeparationPlan:
    """The separator passes of one cover: the main one, then optionally a lead/backing split and a de-reverb pass
    over the separated vocals (community model files; svc_core.cover.CoverRequest's lead_/dereverb_separator)."""

    main: SeparatorChoice
    lead: SeparatorChoice | None = None
    dereverb: SeparatorChoice | None = None

    @property
    def passes(self) -> tuple[SeparatorChoice, ...]:
        return tuple(c for c in (self.main, self.lead, self.dereverb) if c is not None)

    @property
    def key(self) -> str:
        """Names the passes (for the learnt stage speeds)."""
        return "+".join(c.value for c in self.passes)

    @property
    def short(self) -> str:
        """The passes in words, e.g. "HPSS (DSP baseline) + MDX-Net: Karaoke (lead/backing)"."""
        return " + ".join([self.main.short] + [f"{c.short} ({role})" for c, role in
                                                ((self.lead, "lead/backing"), (self.dereverb, "de-reverb"))
                                                if c is not None])


def resolve_model_file(value: str | None, choices: Sequence[SeparatorChoice], what: str) -> SeparatorChoice | None:
    """The community model file `value` ("<family>:<file>", "" for none) for an extra pass; OptionError naming
    the files found."""
    wanted = (value or "").strip()
    if not wanted:
        return None
    community = [c for c in choices if c.kind == "community"]
    for choice in community:
        if choice.value == wanted:
            return choice
    listed = ", ".join(c.value for c in community) or "none is found there"
    raise OptionError(f"Unknown {what} model '{wanted}'. Choose a model file of the separation models folder: "
                      f"{listed}.")


def resolve_plan(separator: str | None, lead: str | None, dereverb: str | None,
                 choices: Sequence[SeparatorChoice]) -> SeparationPlan:
    """The cover's separator passes from the menu values (OptionError for any that is not offered)."""
    return SeparationPlan(resolve_separator(separator, choices), resolve_model_file(lead, choices, "lead/backing"),
                          resolve_model_file(dereverb, choices, "de-reverb"))
