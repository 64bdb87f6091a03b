"""RVC's knobs in More settings (an RVC v1/v2 voice): protect, filter radius, output sample rate; and the words of
the two knobs RVC shares with so-vits under its own names (index rate = the cluster ratio, RMS mix rate = the
loudness mix).

Which knobs show is the voice family's `controls` (svc_core.families, through views.control_set); a hidden knob is
reset to ConvertOptions' default so it cannot act unseen. Defaults and ranges are ConvertOptions' / options.RANGES.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..errors import OptionError  # noqa: E402
from ..options import RANGES, ConvertOptions  # noqa: E402
from . import views  # noqa: E402

PROTECT_RANGE = RANGES["protect"]
FILTER_RANGE = RANGES["filter_radius"]
PROTECT_STEP = 0.01
# Output rates offered (Hz); 0 = the model's own rate. RVC WebUI's slider goes to 48000; the engine takes 16000-96000.
OUTPUT_RATES = (0, 16000, 22050, 24000, 32000, 40000, 44100, 48000, 96000)

CLUSTER_WORDS = {  # family kind -> (label, info) of the cluster-ratio slider
    "so-vits": ("Timbre matching", "cluster / retrieval ratio: 0 = off; higher sounds more like the voice's "
                                   "recordings but less clear"),
    "rvc": ("Index rate", "index_rate: how much of your clip's sound is replaced by the voice's own training "
                          "features from its .index; 0 = off, RVC's default 0.75; high values can slur words"),
}
LOUDNESS_WORDS = {  # family kind -> (label, info) of the loudness-mix slider
    "so-vits": ("Loudness follows", "1 = the voice's own loudness, 0 = your clip's"),
    "rvc": ("RMS mix rate", "rms_mix_rate: 0 = the loudness of your clip, 1 = the voice's own; RVC's default 0.25"),
}


@dataclass
class RvcSettings:
    group: gr.Group
    protect: gr.Slider
    filter_radius: gr.Slider
    resample_sr: gr.Dropdown

    def convert_inputs(self) -> list:
        """The convert event's RVC inputs, in the API's order (after the diffusion ones: added in issue #22)."""
        return [self.protect, self.filter_radius, self.resample_sr]

    def per_voice(self) -> list:
        """The components `rvc_updates` sets, in its order."""
        return [self.group, self.protect, self.filter_radius, self.resample_sr]


def rate_choices() -> list[tuple[str, int]]:
    return [("The model's own rate" if rate == 0 else f"{rate} Hz", rate) for rate in OUTPUT_RATES]


def build_rvc_settings(controls: views.ControlSet) -> RvcSettings:
    """The widgets (call inside More settings), with ConvertOptions' defaults."""
    rvc = _rvc_shown(controls)
    with gr.Group(visible=rvc, elem_id="rvc-settings") as group:
        gr.Markdown("**RVC** (RVC WebUI / Applio voice)", elem_classes=["svc-note"])
        protect = gr.Slider(PROTECT_RANGE.low, PROTECT_RANGE.high, value=ConvertOptions.protect, step=PROTECT_STEP,
                            label="Protect consonants and breaths",
                            info="protect: where your clip has no pitch, keep this much of its own sound so "
                                 "consonants and breaths stay clear; 0.5 = off, RVC's default 0.33",
                            visible=controls.shows("protect"), elem_id="rvc-protect")
        filter_radius = gr.Slider(FILTER_RANGE.low, FILTER_RANGE.high, value=ConvertOptions.filter_radius, step=1,
                                  label="Filter radius (harvest)",
                                  info="filter_radius: 3 or more smooths the harvest pitch tracker's output "
                                       "(a median filter); other trackers ignore it; RVC's default 3",
                                  visible=controls.shows("filter_radius"), elem_id="rvc-filter-radius")
        resample_sr = gr.Dropdown(rate_choices(), value=ConvertOptions.resample_sr, label="Output sample rate",
                                  info="resample_sr: the converted audio is resampled to this rate; the model's "
                                       "own rate by default", visible=controls.shows("resample_sr"),
                                  elem_id="rvc-resample-sr")
    return RvcSettings(group, protect, filter_radius, resample_sr)


def _rvc_shown(controls: views.ControlSet) -> bool:
    return any(controls.shows(name) for name in ("protect", "filter_radius", "resample_sr"))


def _knob(controls: views.ControlSet, option: str, voice_changed: bool) -> dict:
    """Shown: its voice default when a voice was picked (else untouched); hidden: reset to the default."""
    if not controls.shows(option):
        return gr.update(visible=False, value=getattr(ConvertOptions, option))
    return gr.update(visible=True, **({"value": controls.default(option)} if voice_changed else {}))


def rvc_updates(controls: views.ControlSet, voice_changed: bool = True) -> tuple[dict, ...]:
    """Updates for RvcSettings.per_voice()."""
    return (gr.update(visible=_rvc_shown(controls)),
            *(_knob(controls, name, voice_changed) for name in ("protect", "filter_radius", "resample_sr")))


def words_for(controls: views.ControlSet, table: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(label, info) of a shared knob for the voice's family (RVC's words for RVC voices)."""
    return table["rvc" if controls.family.startswith("rvc") else "so-vits"]


def shared_updates(controls: views.ControlSet, voice_changed: bool = True) -> tuple[dict, dict]:
    """Updates for (cluster ratio, loudness mix): RVC's names for RVC voices; on a voice change the family's
    defaults (RVC: index rate 0.75 with an index, RMS mix rate 0.25; so-vits: 0 and 1); hidden: reset."""
    label, info = words_for(controls, CLUSTER_WORDS)
    if controls.cluster:
        cluster = gr.update(visible=True, label=label, info=info,
                            **({"value": controls.default("cluster_ratio")} if voice_changed else {}))
    else:
        cluster = gr.update(visible=False, label=label, info=info, value=0)
    label, info = words_for(controls, LOUDNESS_WORDS)
    loudness = gr.update(visible=controls.shows("loudness_mix"), label=label, info=info,
                         **({"value": controls.default("loudness_mix")} if voice_changed or not controls.shows(
                             "loudness_mix") else {}))
    return cluster, loudness


def pitch_updates(controls: views.ControlSet, f0_menu: list[tuple[str, str]] | None = None,
                  f0_value: str | None = None) -> tuple[dict, dict]:
    """Updates for (transpose, pitch tracker) on the first screen: hidden and reset for a voice that takes no
    pitch (an RVC model without f0); `f0_menu`: the trackers the voice takes (None: unchanged), `f0_value` stays
    picked when it is one of them, else "auto"."""
    transpose = gr.update(visible=True) if controls.shows("transpose") else gr.update(
        visible=False, value=ConvertOptions.transpose)
    if not controls.shows("f0_predictor"):
        return transpose, gr.update(visible=False, value="auto")
    if f0_menu is None:
        return transpose, gr.update(visible=True)
    keep = f0_value if f0_value in [value for _, value in f0_menu] else "auto"
    return transpose, gr.update(visible=True, choices=f0_menu, value=keep)


def rvc_values(protect: float | None, filter_radius: float | None, resample_sr: float | None) -> dict:
    """The API's RVC inputs -> ConvertRequest fields (None: ConvertOptions' default); OptionError for a filter
    radius or rate that is not a whole number (ranges are checked with the other options)."""
    for name, value in (("filter_radius", filter_radius), ("resample_sr", resample_sr)):
        if value is not None and float(value) != int(float(value)):
            raise OptionError(f"{name} is {value}; it must be a whole number.")
    return dict(protect=float(ConvertOptions.protect if protect is None else protect),
                filter_radius=int(ConvertOptions.filter_radius if filter_radius is None else filter_radius),
                resample_sr=int(resample_sr or 0))
