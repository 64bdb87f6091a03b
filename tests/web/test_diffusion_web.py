"""Shallow diffusion in the web demo on a real server of its own and the real engine: the Gradio API through
gradio_client (the new inputs last, with defaults, so older calls keep working) and the page in Debian's Chromium
(the Diffusion controls follow the voice; a conversion with shallow diffusion shows its stages).

Voices (upstream layout, small random weights): `demo-voice` (so-vits only), `diff-voice` (the same so-vits model
with a diffusion model trained to k_step_max 40 in diffusion/ and its own nsf_hifigan/), `diff-only` (a diffusion
model alone). 2 s clips.
"""
from __future__ import annotations

import pytest
import soundfile as sf

from browser_support import GUARD_MS, pick_voice, shown, until
from diffusion_voice_factories import diffusion_only_voice, diffusion_voice

API = "/convert"
K_STEP_MAX = 40  # diff-voice's diffusion model: trained on the first 40 steps only (a shallow-only model)
NEW_INPUTS = {"shallow_diffusion": False, "only_diffusion": False, "k_step": 100, "diffusion_method": "default",
              "diffusion_speedup": 0, "second_encoding": False, "enhance": False, "enhancer_adaptive_key": 0}


@pytest.fixture(scope="module")
def diffusion_server(voices_server):
    def populate(models):
        diffusion_voice(models, models / "demo-voice", k_step_max=K_STEP_MAX)
        diffusion_only_voice(models)

    server = voices_server("diffusion", populate, gain=0.9)
    yield server
    server.demo.close()


@pytest.fixture(scope="module")
def diffusion_client(diffusion_server, client_for):
    return client_for(diffusion_server)


def convert(client, clip, model="diff-voice", **extra):
    from gradio_client import handle_file

    return client.predict(audio=handle_file(str(clip)), model=model, speaker="alto", transpose=0,
                          f0_predictor="pm", api_name=API, **extra)


# ------------------------------------------------------------------ the API
def test_the_new_inputs_come_last_with_defaults(diffusion_client):
    endpoint = diffusion_client.view_api(return_format="dict", print_info=False)["named_endpoints"][API]
    params = endpoint["parameters"]
    names = [p["parameter_name"] for p in params]
    assert names[:16] == ["audio", "model", "speaker", "transpose", "f0_predictor", "auto_f0", "cluster_ratio",
                          "noise_scale", "slice_db", "pad_seconds", "clip_seconds", "crossfade_seconds",
                          "loudness_mix", "backend", "vocoder_precision", "encoder_precision"]
    assert names[16:24] == list(NEW_INPUTS)  # then RVC's (issue #22, tests/web/test_rvc_web.py)
    assert {p["parameter_name"]: p["parameter_default"] for p in params[16:24]} == NEW_INPUTS
    assert all(p["parameter_has_default"] for p in params[13:])


def test_api_converts_with_shallow_diffusion(diffusion_client, diffusion_server):
    audio, log, timing, _, summary, progress = convert(diffusion_client, diffusion_server.clip,
                                                       shallow_diffusion=True, k_step=20, diffusion_method="ddim",
                                                       diffusion_speedup=5)
    info = sf.info(audio)
    assert info.samplerate == 44100 and abs(info.duration - 2.0) < 0.05
    assert "shallow diffusion k_step 20, ddim speedup 5 (4 denoiser calls per piece)" in log
    assert "x 2.2 for diffusion" in log  # the time budget: 1 + mel vocoder 0.6 + 4 calls x 0.15 (job_io.py)
    stages = [row[0] for row in timing["data"]]
    assert {"synthesizer", "vocoder", "diffusion", "mel vocoder"} <= set(stages)
    assert 'data-state="done"' in progress


def test_api_shallow_diffusion_on_the_onnx_engine(diffusion_client, diffusion_server):
    """The so-vits part on ONNX Runtime (exported on first use), and the diffusion model and mel vocoder too."""
    _, log, timing, _, summary, _ = convert(diffusion_client, diffusion_server.clip, backend="onnx",
                                            shallow_diffusion=True, k_step=10)
    assert "backend: onnxruntime CPUExecutionProvider" in log
    assert "diffusion model and mel vocoder on ONNX Runtime" in log
    assert {"diffusion", "mel vocoder"} <= {row[0] for row in timing["data"]}


def test_api_enhancer(diffusion_client, diffusion_server):
    """enhance re-vocodes the so-vits output with the voice's own NSF-HiFiGAN (no diffusion stage)."""
    audio, log, timing, *_ = convert(diffusion_client, diffusion_server.clip, enhance=True, enhancer_adaptive_key=2)
    assert "NSF-HiFiGAN enhancer (adaptive key +2)" in log
    stages = {row[0] for row in timing["data"]}
    assert "mel vocoder" in stages and "diffusion" not in stages
    assert abs(sf.info(audio).duration - 2.0) < 0.05


def test_api_refuses_what_the_voice_cannot_do(diffusion_client, diffusion_server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="The enhancer needs the NSF-HiFiGAN mel vocoder, and none is found for "
                                       "demo-voice"):
        convert(diffusion_client, diffusion_server.clip, model="demo-voice", enhance=True)

    with pytest.raises(AppError, match="has no diffusion model"):
        convert(diffusion_client, diffusion_server.clip, model="demo-voice", shallow_diffusion=True)
    with pytest.raises(AppError, match="k_step 41 is above what this diffusion model was trained for"):
        convert(diffusion_client, diffusion_server.clip, shallow_diffusion=True, k_step=K_STEP_MAX + 1)
    with pytest.raises(AppError, match="Only-diffusion needs a diffusion model trained on the whole chain"):
        convert(diffusion_client, diffusion_server.clip, only_diffusion=True)


def test_api_call_without_the_new_inputs_on_a_diffusion_only_voice(diffusion_client, diffusion_server):
    audio, log, timing, *_ = convert(diffusion_client, diffusion_server.clip, model="diff-only",
                                     diffusion_speedup=50)
    assert "is a diffusion model alone" in log and "only-diffusion, dpm-solver++ speedup 50" in log
    stages = {row[0] for row in timing["data"]}
    assert {"diffusion", "mel vocoder"} <= stages and "synthesizer" not in stages
    assert abs(sf.info(audio).duration - 2.0) < 0.05


# ------------------------------------------------------------------ the page
def test_page_diffusion_controls_follow_the_voice_and_shallow_diffusion_shows_its_stages(chromium,
                                                                                          diffusion_server):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(diffusion_server.url)
        page.wait_for_selector("#convert-button", timeout=GUARD_MS)
        page.get_by_text("More settings").click()
        page.wait_for_selector("#slice-db", state="visible", timeout=GUARD_MS)
        pick_voice(page, "demo-voice")
        page.wait_for_selector("#k-step", state="hidden", timeout=GUARD_MS)
        assert not shown(page, "#enhance")  # no vocoder for it on this server

        pick_voice(page, "diff-voice")
        page.wait_for_selector("#k-step", state="visible", timeout=GUARD_MS)
        for knob in ("#shallow-diffusion", "#diffusion-method", "#diffusion-speedup",
                     "#second-encoding", "#enhance"):
            assert shown(page, knob), knob
        assert not shown(page, "#only-diffusion")  # a shallow-only model (k_step_max 40)
        assert page.locator("#k-step input[type=number]").get_attribute("max") == str(K_STEP_MAX)
        assert page.locator("#diffusion-method input").input_value() == "The model's own (dpm-solver++)"
        page.locator("#shallow-diffusion input").check()
        page.wait_for_selector("#enhance", state="hidden", timeout=GUARD_MS)  # off while diffusing
        page.fill("#k-step input[type=number]", "10")
        page.locator("#k-step input[type=number]").press("Enter")

        page.set_input_files("#input-audio input[type=file]", str(diffusion_server.clip))
        page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
        page.click("#convert-button")
        until(page, "() => document.querySelector('#job-progress [data-state=\"done\"]') !== null")
        log = page.input_value("#log-panel textarea")
        assert "shallow diffusion k_step 10, dpm-solver++ speedup 10" in log and "mel vocoder" in log
        page.get_by_text("Time per stage").click()
        until(page, "() => (document.querySelector('#timing-table') || {innerText: ''}).innerText"
                     ".includes('mel vocoder')")
        table = page.locator("#timing-table").inner_text()
        assert "diffusion" in table and "synthesizer" in table

        pick_voice(page, "diff-only")  # no so-vits knobs, no shallow switch: it always diffuses
        page.wait_for_selector("#shallow-diffusion", state="hidden", timeout=GUARD_MS)
        assert shown(page, "#k-step") and shown(page, "#diffusion-method")
        for hidden in ("#noise-scale", "#backend-picker", "#only-diffusion", "#enhance"):
            assert not shown(page, hidden), hidden
        assert "Diffusion model only" in page.locator("#voice-note").inner_text()
    finally:
        page.close()
