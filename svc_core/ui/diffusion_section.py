"""The "Diffusion" part of More settings (a voice with a so-vits-svc 4.1 diffusion model) and the enhancer switch.

Shown per voice (`views.diffusion_controls` decides): shallow diffusion on/off, its depth (k_step, 1 to the model's
k_step_max), the sampler (the model's own, or any of svc_core.options.DIFFUSION_METHODS), its speedup,
only-diffusion (a model trained on the whole chain), second encoding. The enhancer (re-vocoding the so-vits output
with the NSF-HiFiGAN mel vocoder) and its adaptive key are shown where a vocoder is found, while diffusion is off.
A hidden knob is reset to its neutral value (off, the model's own) so it cannot act unseen.

The components start with the widest values the API accepts (Gradio checks an API call against a component's
first settings); picking a voice (and loading the page) narrows them to that voice's.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..options import DIFFUSION_METHODS, RANGES, ConvertOptions  # noqa: E402
from . import views  # noqa: E402

MODEL_DEFAULT = "default"  # the sampler menu's value for "the diffusion config's infer.method"
SPEEDUP_DEFAULT = 0  # the speedup slider's value for "the diffusion config's infer.speedup"
SAMPLER_NOTES = {  # what each sampler is, for the menu (upstream's names; ddpm is the plain full chain)
    "dpm-solver++": "dpm-solver++ (upstream's default: few steps, good quality)",
    "dpm-solver": "dpm-solver (few steps)",
    "unipc": "unipc (few steps)",
    "pndm": "pndm (4 denoiser calls per step at the start)",
    "ddim": "ddim (simple, needs more steps)",
    "ddpm": "ddpm (every step, slowest; speedup ignored)",
}
K_STEP_MAX = int(RANGES["k_step"].high)  # the widest k_step any model allows (options.RANGES)
SPEEDUP_MAX = int(RANGES["diffusion_speedup"].high)
KEY_RANGE = RANGES["enhancer_adaptive_key"]


@dataclass
class DiffusionSettings:
    group: gr.Group
    shallow: gr.Checkbox
    only: gr.Checkbox
    k_step: gr.Slider
    method: gr.Dropdown
    speedup: gr.Slider
    second_encoding: gr.Checkbox
    enhancer: gr.Group
    enhance: gr.Checkbox
    adaptive_key: gr.Slider

    def convert_inputs(self) -> list:
        """The convert event's diffusion inputs, in the API's order (after encoder_precision)."""
        return [self.shallow, self.only, self.k_step, self.method, self.speedup, self.second_encoding, self.enhance,
                self.adaptive_key]

    def per_voice(self) -> list:
        """The components `diffusion_updates` sets, in its order."""
        return [self.group, self.shallow, self.only, self.k_step, self.method, self.speedup, self.second_encoding,
                self.enhancer, self.enhance, self.adaptive_key]


def method_choices(own: str | None) -> list[tuple[str, str]]:
    """(label, value) pairs of the sampler menu: the model's own first (value "default"), then every sampler."""
    first = f"The model's own ({own})" if own else "The model's own (its config.yaml infer.method)"
    return [(first, MODEL_DEFAULT)] + [(SAMPLER_NOTES.get(m, m), m) for m in DIFFUSION_METHODS]


def speedup_info(own: int | None) -> str:
    mine = f"this model's own ({own})" if own else "the model's own (config.yaml infer.speedup)"
    return f"diffusion speedup: steps skipped per denoiser call; higher is faster, lower is finer; 0 = {mine}"


def build_diffusion_settings(controls: views.ControlSet) -> DiffusionSettings:
    """The widgets (call inside More settings), with the API's defaults: diffusion and enhancer off, k_step 100,
    the model's own sampler and speedup."""
    d = controls.diffusion
    with gr.Group(visible=d is not None, elem_id="diffusion-settings") as group:
        gr.Markdown("**Diffusion** (so-vits-svc 4.1 diffusion model)", elem_classes=["svc-note"])
        shallow = gr.Checkbox(False, label="Polish with the diffusion model",
                              info="shallow diffusion: re-renders the voice's sound with its diffusion model (less "
                                   "buzz and hoarseness; slower)", visible=d is not None and d.shallow,
                              elem_id="shallow-diffusion")
        only = gr.Checkbox(False, label="Diffusion model alone",
                           info="only-diffusion: the diffusion model renders the whole voice from noise; the "
                                "so-vits model is not used", visible=d is not None and d.only_diffusion,
                           elem_id="only-diffusion")
        k_step = gr.Slider(1, K_STEP_MAX, value=ConvertOptions.k_step, step=1, label="Diffusion depth",
                           info="k_step: how many of the model's noise steps are redone (at most its k_step_max); "
                                "deeper changes more and takes longer", elem_id="k-step")
        method = gr.Dropdown(method_choices(d.method if d else None), value=MODEL_DEFAULT, label="Sampler",
                             info="diffusion method", elem_id="diffusion-method")
        speedup = gr.Slider(0, SPEEDUP_MAX, value=SPEEDUP_DEFAULT, step=1, label="Sampler speedup",
                            info=speedup_info(d.speedup if d else None), elem_id="diffusion-speedup")
        second_encoding = gr.Checkbox(False, label="Read the converted voice again",
                                      info="second encoding: the content encoder reads the so-vits output again for "
                                           "the diffusion model (can help or hurt)",
                                      visible=d is not None and d.shallow, elem_id="second-encoding")
    with gr.Group(visible=controls.enhancer, elem_id="enhancer-settings") as enhancer:
        enhance = gr.Checkbox(False, label="Enhance with the NSF-HiFiGAN vocoder",
                              info="enhancer: re-renders the voice with the NSF-HiFiGAN mel vocoder (helps models "
                                   "trained briefly; off while diffusing)", elem_id="enhance")
        adaptive_key = gr.Slider(KEY_RANGE.low, KEY_RANGE.high, value=ConvertOptions.enhancer_adaptive_key, step=1,
                                 label="Enhancer range (semitones)",
                                 info="enhancer adaptive key: lets the enhancer reach higher notes; 0 = off",
                                 elem_id="enhancer-adaptive-key")
    return DiffusionSettings(group, shallow, only, k_step, method, speedup, second_encoding, enhancer, enhance,
                             adaptive_key)


def diffusion_updates(controls: views.ControlSet) -> tuple[dict, ...]:
    """Updates for DiffusionSettings.per_voice() when a voice (or engine) is picked: the voice's k_step range and
    its own sampler and speedup, every switch off, hidden parts reset."""
    d = controls.diffusion
    shown = d is not None
    return (gr.update(visible=shown),
            gr.update(visible=shown and d.shallow, value=False),
            gr.update(visible=shown and d.only_diffusion, value=False),
            gr.update(maximum=d.max_k_step if shown else K_STEP_MAX,
                      value=d.k_step if shown else ConvertOptions.k_step),
            gr.update(choices=method_choices(d.method if shown else None), value=MODEL_DEFAULT),
            gr.update(maximum=d.max_k_step if shown else SPEEDUP_MAX, value=SPEEDUP_DEFAULT,
                      info=speedup_info(d.speedup if shown else None)),
            gr.update(visible=shown and d.shallow, value=False),
            *enhancer_updates(controls.enhancer, diffusing=False))


def enhancer_updates(available: bool, diffusing: bool) -> tuple[dict, ...]:
    """Updates for (enhancer group, enhance, adaptive_key): shown where a vocoder is and diffusion is off; reset
    when hidden."""
    shown = available and not diffusing
    if shown:
        return gr.update(visible=True), gr.update(), gr.update()
    return gr.update(visible=False), gr.update(value=False), gr.update(value=ConvertOptions.enhancer_adaptive_key)


def engine_values(shallow: bool, only: bool, k_step: float, method: str | None, speedup: float,
                  second_encoding: bool, enhance: bool, adaptive_key: float) -> dict:
    """The API's diffusion inputs -> ConvertRequest fields ("default" / 0: the model's own)."""
    return dict(shallow_diffusion=bool(shallow), only_diffusion=bool(only),
                k_step=int(k_step if k_step is not None else ConvertOptions.k_step),
                diffusion_method=None if not method or method == MODEL_DEFAULT else str(method),
                diffusion_speedup=int(speedup) if speedup else None, second_encoding=bool(second_encoding),
                enhance=bool(enhance), enhancer_adaptive_key=float(adaptive_key or 0))
