"""RVC voices in the web demo on a real server of its own and the real engine: the Gradio API through
gradio_client (RVC's inputs appended last with defaults, so older calls keep working) and the page in Debian's
Chromium (RVC's knobs shown for an RVC voice and so-vits' hidden; a conversion gives audio).

Voices (random weights, upstream layouts): `demo-voice` (so-vits, vec256l9), `alto` (RVC v1 40k with its
added_*.index: v1 takes the server's vec256l9 ContentVec), `hush` (RVC v1 40k without pitch input). 2 s clips.
"""
from __future__ import annotations

import pytest
import soundfile as sf

from browser_support import GUARD_MS, pick_voice, shown, until
from rvc_web_factories import rvc_voice_folder
from svc_core.ui import backends

API = "/convert"
RVC_INPUTS = {"protect": 0.33, "filter_radius": 3, "resample_sr": 0}


@pytest.fixture(scope="module")
def rvc_server(voices_server):
    def populate(models):
        rvc_voice_folder(models, "alto", version="v1", sr="40k", seed=5)
        rvc_voice_folder(models, "hush", version="v1", sr="40k", f0=False, index=False, seed=6)

    server = voices_server("rvc", populate)
    yield server
    server.demo.close()


@pytest.fixture(scope="module")
def rvc_client(rvc_server, client_for):
    return client_for(rvc_server)


def convert(client, clip, model="alto", speaker="0", f0_predictor="pm", **extra):
    from gradio_client import handle_file

    return client.predict(audio=handle_file(str(clip)), model=model, speaker=speaker, transpose=0,
                          f0_predictor=f0_predictor, api_name=API, **extra)


# ------------------------------------------------------------------ the API
def test_rvc_inputs_come_last_with_defaults(rvc_client):
    params = rvc_client.view_api(return_format="dict", print_info=False)["named_endpoints"][API]["parameters"]
    assert [p["parameter_name"] for p in params[-3:]] == list(RVC_INPUTS)
    assert {p["parameter_name"]: p["parameter_default"] for p in params[-3:]} == RVC_INPUTS
    assert all(p["parameter_has_default"] for p in params[-3:])


def test_api_converts_with_an_rvc_voice_and_its_index(rvc_client, rvc_server):
    audio, log, timing, *_ = convert(rvc_client, rvc_server.clip, cluster_ratio=0.75, loudness_mix=0.25,
                                     protect=0.4)
    info = sf.info(audio)
    assert info.samplerate == 40000 and abs(info.duration - 2.0) < 0.05
    data, _ = sf.read(audio)
    assert data.std() > 1e-4  # sound, not silence
    assert "index rate 0.75, protect 0.4, filter radius 3, rms mix rate 0.25" in log
    assert "done:" in log


def test_api_rvc_output_rate_and_stages(rvc_client, rvc_server):
    audio, log, timing, *_ = convert(rvc_client, rvc_server.clip, cluster_ratio=0.5, loudness_mix=1.0,
                                     resample_sr=48000)
    info = sf.info(audio)
    assert info.samplerate == 48000 and abs(info.duration - 2.0) < 0.05
    assert "output 48000 Hz" in log
    stages = {row[0] for row in timing["data"]}
    assert {"highpass", "retrieval", "synthesizer"} <= stages  # RVC's recipe ran (f0 and features: reused from
    # the conversion of the same clip before, svc_core.pipeline.FeatureCache)


def test_api_rvc_voice_on_the_fast_engine(rvc_client, rvc_server):
    """backend=onnx: the RVC voice is exported once and runs on ONNX Runtime (RvcOnnxVoice) with RVC's recipe."""
    audio, log, _, _, summary, _ = convert(rvc_client, rvc_server.clip, backend="onnx", cluster_ratio=0.75,
                                           loudness_mix=0.25)
    assert "exporting it to ONNX" in log and "backend: onnxruntime CPUExecutionProvider" in log
    assert "Synthesizer backend: onnxruntime" in summary
    assert sf.info(audio).samplerate == 40000 and abs(sf.info(audio).duration - 2.0) < 0.05
    assert len(list((rvc_server.state.work_dir / "onnx").glob("rvc-*.onnx.json"))) == 1


def test_api_converts_with_a_no_pitch_voice(rvc_client, rvc_server):
    """"auto" (the menu's default) asks for no tracker; a tracker named explicitly is refused for this voice."""
    from gradio_client.exceptions import AppError

    audio, log, *_ = convert(rvc_client, rvc_server.clip, model="hush", f0_predictor="auto", loudness_mix=0.25)
    assert sf.info(audio).samplerate == 40000 and "no pitch input" in log
    with pytest.raises(AppError, match="f0_predictor does not apply to an RVC model without pitch input"):
        convert(rvc_client, rvc_server.clip, model="hush", f0_predictor="harvest")


def test_api_refuses_what_a_voice_does_not_use(rvc_client, rvc_server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="noise_scale does not apply to RVC"):
        convert(rvc_client, rvc_server.clip, noise_scale=0.6)
    with pytest.raises(AppError, match="protect does not apply to so-vits-svc"):
        convert(rvc_client, rvc_server.clip, model="demo-voice", speaker="alto", protect=0.2)
    with pytest.raises(AppError, match="filter_radius is 2.5; it must be a whole number"):
        convert(rvc_client, rvc_server.clip, filter_radius=2.5)
    with pytest.raises(AppError, match="transpose does not apply to an RVC model without pitch input"):
        from gradio_client import handle_file

        rvc_client.predict(audio=handle_file(str(rvc_server.clip)), model="hush", speaker="0", transpose=2,
                           f0_predictor="auto", loudness_mix=0.25, api_name=API)
    with pytest.raises(AppError, match="RVC voices take the f0 predictors"):
        convert(rvc_client, rvc_server.clip, f0_predictor="dio")


# ------------------------------------------------------------------ the page
def _slider(page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


SOVITS_KNOBS = ("#noise-scale", "#slice-db", "#pad-seconds", "#clip-seconds", "#crossfade-seconds")
RVC_KNOBS = ("#rvc-protect", "#rvc-filter-radius", "#rvc-resample-sr")


def test_page_shows_rvc_knobs_for_an_rvc_voice_and_converts(chromium, rvc_server):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(rvc_server.url)
        page.wait_for_selector("#convert-button", timeout=GUARD_MS)
        page.get_by_text("More settings", exact=True).click()
        pick_voice(page, "demo-voice")
        page.wait_for_selector("#noise-scale", state="visible", timeout=GUARD_MS)
        assert not any(shown(page, knob) for knob in RVC_KNOBS)

        pick_voice(page, "alto")
        page.wait_for_selector("#rvc-protect", state="visible", timeout=GUARD_MS)
        assert all(shown(page, knob) for knob in RVC_KNOBS + ("#cluster-ratio", "#transpose", "#f0-picker"))
        assert not any(shown(page, knob) for knob in SOVITS_KNOBS + ("#auto-f0",))
        until(page, "() => document.querySelector('#cluster-ratio').innerText.includes('Index rate')")  # relabelled
        until(page, "() => document.querySelector('#loudness-mix').innerText.includes('RMS mix rate')")
        assert (_slider(page, "cluster-ratio"), _slider(page, "loudness-mix")) == (0.75, 0.25)  # RVC's defaults
        assert (_slider(page, "rvc-protect"), _slider(page, "rvc-filter-radius")) == (0.33, 3)
        assert "RVC v1 40k" in page.locator("#voice-note").inner_text()
        assert shown(page, "#backend-picker") == backends.rvc_onnx_available()  # the Fast engine takes RVC voices

        page.set_input_files("#input-audio input[type=file]", str(rvc_server.clip))
        page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
        page.click("#convert-button")
        until(page, "() => document.querySelector('#job-progress [data-state=\"done\"]') !== null")
        log = page.input_value("#log-panel textarea")
        assert "index rate 0.75" in log and "rms mix rate 0.25" in log and "done:" in log

        pick_voice(page, "hush")  # no pitch input: no transpose, pitch tracker, protect or filter radius
        page.wait_for_selector("#transpose", state="hidden", timeout=GUARD_MS)
        for hidden in ("#f0-picker", "#rvc-protect", "#rvc-filter-radius", "#cluster-ratio"):
            assert not shown(page, hidden), hidden
        assert shown(page, "#rvc-resample-sr") and "no pitch input" in page.locator("#voice-note").inner_text()

        pick_voice(page, "demo-voice")  # back to so-vits: its knobs and its loudness default
        page.wait_for_selector("#noise-scale", state="visible", timeout=GUARD_MS)
        assert shown(page, "#transpose") and not shown(page, "#rvc-protect")
        assert _slider(page, "loudness-mix") == 1.0
        assert "Loudness follows" in page.locator("#loudness-mix").inner_text()
    finally:
        page.close()
