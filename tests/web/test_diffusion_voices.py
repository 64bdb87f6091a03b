"""Diffusion voices in the web demo without a server: voice folders and uploads with a so-vits-svc 4.1 diffusion
model (upstream layout, small random weights), the controls the page offers for them, and a conversion job with
shallow diffusion through the real engine (JobContext + ConversionJob, as the page and API run it)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from diffusion_voice_factories import SPEAKERS, add_diffusion, diffusion_only_voice, diffusion_voice
from svc_core.errors import ModelError, OptionError
from svc_core.ui.models import ModelLibrary, describe_folder, scan_models_dir
from svc_core.ui.settings_section import voice_traits
from svc_core.ui.views import DIFFUSION_ONLY_NOTE, DiffusionControls, VoiceTraits, control_set

TORCH_FAST = ["fp32", "bf16"]


@pytest.fixture
def demo(web_voice) -> Path:
    return web_voice.models_dir / "demo-voice"


# ------------------------------------------------------------------ voice folders
def test_a_voice_folder_with_a_diffusion_model_is_listed_with_it(demo, tmp_path):
    models = tmp_path / "models"
    folder = diffusion_voice(models, demo, k_step_max=40)
    shutil.copytree(demo, models / "plain")
    diffusion_only_voice(models, vocoder=False)
    broken = models / "no-yaml"
    add_diffusion(broken, vocoder=False)
    (broken / "diffusion" / "config.yaml").unlink()
    scan = scan_models_dir(models)
    entries = {e.key: e for e in scan.entries}
    assert set(entries) == {"diff-voice", "plain", "diff-only"}
    voice = entries["diff-voice"]
    assert voice.diffusion.model == folder / "diffusion" / "model_1200.pt"
    assert voice.diffusion.config == folder / "diffusion" / "config.yaml"
    assert voice.vocoder_path == folder / "nsf_hifigan" / "model" and not voice.diffusion_only
    assert voice.label == "diff-voice (3 speakers; so-vits-svc, with diffusion; vec256l9)"
    assert entries["plain"].diffusion is None and "diffusion" not in entries["plain"].label
    alone = entries["diff-only"]
    assert alone.diffusion_only and alone.vocoder_path is None and alone.folder == models / "diff-only"
    assert alone.speakers == tuple(SPEAKERS) and alone.speech_encoder == "vec256l9"
    assert alone.label == "diff-only (3 speakers; diffusion model only; vec256l9)"
    assert len(scan.problems) == 1 and scan.problems[0].startswith("no-yaml: ")
    assert "model_1200.pt but no config.yaml" in scan.problems[0]


def test_a_broken_diffusion_yaml_is_named_when_the_folder_is_scanned(demo, tmp_path):
    folder = diffusion_voice(tmp_path / "models", demo)
    config = folder / "diffusion" / "config.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["model"]["n_layers"] = "many"
    config.write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelError, match="n_layers"):
        describe_folder(folder, "diff-voice")


# ------------------------------------------------------------------ controls
def test_controls_for_voices_with_and_without_diffusion(demo, tmp_path):
    models = tmp_path / "models"
    shallow_only = describe_folder(diffusion_voice(models, demo, k_step_max=40), "a")
    full_chain = describe_folder(diffusion_voice(models, demo, name="full"), "b")
    alone = describe_folder(diffusion_only_voice(models), "c")
    plain = describe_folder(demo, "demo-voice")

    traits = voice_traits(shallow_only)
    assert traits.diffusion.max_k_step == 40 and not traits.diffusion.full_chain and traits.vocoder
    c = control_set(traits, "torch", TORCH_FAST)
    assert c.diffusion == DiffusionControls(shallow=True, only_diffusion=False, max_k_step=40, k_step=40,
                                            method="dpm-solver++", speedup=10)
    assert c.enhancer and c.noise and c.engine_picker
    full = control_set(voice_traits(full_chain), "onnx", TORCH_FAST)  # diffusion runs in torch on both engines
    assert full.diffusion.only_diffusion and full.diffusion.max_k_step == 1000 and full.diffusion.k_step == 100
    only = control_set(voice_traits(alone), "onnx", TORCH_FAST)
    assert only.diffusion == DiffusionControls(shallow=False, only_diffusion=False, max_k_step=1000, k_step=100,
                                               method="dpm-solver++", speedup=10)
    assert (only.noise, only.auto_f0, only.engine_picker, only.engine, only.vocoder_precisions, only.enhancer) == \
        (False, False, False, "torch", (), False)
    assert only.note == DIFFUSION_ONLY_NOTE
    none = control_set(voice_traits(plain), "torch", TORCH_FAST)
    assert none.diffusion is None and not none.enhancer  # no vocoder anywhere on this test server
    assert control_set(VoiceTraits(vocoder=True), "torch", TORCH_FAST).enhancer  # e.g. pretrain/nsf_hifigan


def test_the_enhancer_is_offered_with_the_servers_pretrain_vocoder(demo, tmp_path, monkeypatch):
    from vocoder_factories import make_vocoder

    pretrain = tmp_path / "pretrain"
    make_vocoder(pretrain / "nsf_hifigan")
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(pretrain))
    assert voice_traits(describe_folder(demo, "demo-voice")).vocoder


# ------------------------------------------------------------------ uploads
def _upload_files(demo: Path, tmp_path: Path, with_sovits: bool = True, **kwargs) -> list[Path]:
    source = tmp_path / "picked"
    model, config = add_diffusion(source, vocoder=False, **kwargs)
    files = [model, config]
    if with_sovits:
        shutil.copyfile(demo / "G_0.pth", source / "G_800.pth")
        shutil.copyfile(demo / "config.json", source / "config.json")
        files += [source / "G_800.pth", source / "config.json"]
    return files


def test_a_voice_uploaded_with_its_diffusion_model_is_checked_stored_and_kept(web_voice, demo, tmp_path):
    uploads = tmp_path / "uploads"
    library = ModelLibrary(web_voice.models_dir, uploads)
    entry = library.add_upload(_upload_files(demo, tmp_path), owner="me")
    assert entry.diffusion is not None and not entry.diffusion_only
    assert entry.diffusion.model == entry.folder / "diffusion" / "model_1200.pt"
    manifest = json.loads((entry.folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"G_800.pth", "config.json", "diffusion/model_1200.pt", "diffusion/config.yaml"}
    assert manifest["summary"]["diffusion"] == "model_1200.pt"
    again = ModelLibrary(web_voice.models_dir, uploads)  # a restart: the manifest (with diffusion/) checks out
    kept = again.get(entry.key)
    assert kept.diffusion == entry.diffusion and kept.label == entry.label
    (entry.folder / "diffusion" / "config.yaml").write_text("data: {}\n")  # changed behind the server's back
    assert [k for _, k in ModelLibrary(web_voice.models_dir, uploads).choices("me")
            if k.startswith("upload-")] == []


def test_a_diffusion_model_uploaded_alone_is_a_diffusion_only_voice(web_voice, demo, tmp_path):
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads")
    entry = library.add_upload(_upload_files(demo, tmp_path, with_sovits=False), owner="me")
    assert entry.diffusion_only and entry.speakers == tuple(SPEAKERS)
    assert entry.label.startswith("alto, tenor +1 (uploaded ") and entry.label.endswith(", step 1200)")


@pytest.mark.parametrize("case,message", [
    ("yaml alone", "is a diffusion config.yaml: upload its diffusion model"),
    ("model alone", "needs its config.yaml"),
    ("json without generator", "A config.json belongs to a so-vits generator"),
    ("big yaml", "larger than the 1 MiB accepted"),
    ("other voice", "The diffusion model does not belong to this voice"),
    ("not its yaml", "n_layers"),
])
def test_bad_diffusion_uploads_are_refused_with_their_reason(web_voice, demo, tmp_path, case, message):
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads")
    files = _upload_files(demo, tmp_path, with_sovits=case not in ("json without generator",))
    model, config = files[0], files[1]
    if case == "yaml alone":
        files.remove(model)
    elif case == "model alone":
        files.remove(config)
    elif case == "json without generator":
        files.append(tmp_path / "config.json")
        shutil.copyfile(demo / "config.json", files[-1])
    elif case == "big yaml":
        config.write_text(config.read_text() + "#" * (1024 * 1024) + "\n")
    elif case == "other voice":  # trained with a 768-wide encoder: not this vec256l9 voice's
        from diffusion_factories import make_diffusion_model

        files[:2] = make_diffusion_model(tmp_path / "wide", encoder="vec768l12", n_spk=3, speakers=SPEAKERS)
    elif case == "not its yaml":
        doc = yaml.safe_load(config.read_text())
        doc["model"]["n_layers"] = 3
        config.write_text(yaml.safe_dump(doc))
    with pytest.raises((ModelError, OptionError)) as err:
        library.add_upload(files, owner="me")
    assert message in str(err.value)
    assert not list((tmp_path / "uploads").glob("upload-*"))  # nothing kept


# ------------------------------------------------------------------ the job path
def test_job_path_request_options_and_budget(demo, tmp_path):
    from svc_core.ui.diffusion_files import DiffusionTraits
    from svc_core.ui.eta import Work, job_rates
    from svc_core.ui.job_io import DENOISER_CALL_COST as CALL
    from svc_core.ui.job_io import MEL_VOCODER_COST as VOC
    from svc_core.ui.job_io import ConvertRequest, cost_factor, denoiser_calls

    plain = ConvertRequest("clip.wav", "v", "alto")
    assert cost_factor(plain) == 1.0
    opts = plain.options()
    assert (opts.shallow_diffusion, opts.only_diffusion, opts.k_step, opts.diffusion_method,
            opts.diffusion_speedup, opts.enhance) == (False, False, 100, None, None, False)
    traits = DiffusionTraits(max_k_step=1000, method="dpm-solver++", speedup=10, full_chain=True)
    shallow = ConvertRequest("clip.wav", "v", "alto", shallow_diffusion=True, k_step=100)
    assert denoiser_calls(100, 10, "dpm-solver++") == 10 and denoiser_calls(100, 10, "ddpm") == 100
    assert denoiser_calls(100, 10, "pndm") == 19
    assert cost_factor(shallow, traits) == pytest.approx(1 + VOC + CALL * 10)
    deeper = ConvertRequest("clip.wav", "v", "alto", shallow_diffusion=True, k_step=200, diffusion_speedup=5)
    assert cost_factor(deeper, traits) == pytest.approx(1 + VOC + CALL * 40)
    alone = ConvertRequest("clip.wav", "v", "alto", only_diffusion=True)
    assert cost_factor(alone, traits) == pytest.approx(VOC + CALL * 100)
    assert cost_factor(ConvertRequest("clip.wav", "v", "alto", enhance=True)) == 1 + VOC
    with pytest.raises(OptionError, match="diffusion_method 'euler' is not a sampler"):
        ConvertRequest("clip.wav", "v", "alto", diffusion_method="euler").options()
    with pytest.raises(OptionError, match="k_step is 0"):
        ConvertRequest("clip.wav", "v", "alto", k_step=0).options()
    rates = job_rates({"f0": 0.1, "encoder": 0.1, "synthesizer": 0.2, "vocoder": 0.5, "finish": 0.0,
                       "diffusion": 0.01}, Work(synthesizer=False, denoiser_calls=10, mel_vocoder=True))
    assert rates["diffusion"] == pytest.approx(0.1) and rates["synthesizer"] == rates["vocoder"] == 0.0
    assert job_rates({}, Work())["diffusion"] == 0.0 and job_rates({}, Work())["mel vocoder"] == 0.0


def test_budget_grows_with_the_diffusion_work():
    from svc_core.ui.limits import JobLimits

    limits = JobLimits(seconds_per_audio_second=10, allowance_seconds=100, max_job_seconds=0)
    assert limits.budget(10.0).seconds == 200
    grown = limits.budget(10.0, cost=4.5, why="diffusion")
    assert grown.seconds == pytest.approx(100 + 450) and "x 4.5 for diffusion" in grown.explanation


def test_diffusion_reports_progress_per_denoiser_call_then_the_mel_vocoder(web_voice, demo, tmp_path):
    """What moves the page's bar during diffusion: a "diffusion" step per denoiser call, then "mel vocoder"."""
    from svc_core import cancel
    from svc_core.pipeline import Svc

    folder = diffusion_voice(tmp_path / "models", demo)

    class Steps(cancel.Watch):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[tuple[str, float]] = []

        def on_step(self, piece: int, stage: str, fraction: float) -> None:
            self.steps.append((stage, fraction))

    svc = Svc(folder / "G_0.pth", folder / "config.json", diffusion_model_path=folder / "diffusion" / "model_1200.pt",
              diffusion_config_path=folder / "diffusion" / "config.yaml", vocoder_path=folder / "nsf_hifigan")
    wav = sf_read(web_voice.clip)
    watch = Steps()
    with cancel.watching(watch):
        svc.slice_inference(wav, 44100, "alto", f0_predictor="pm", shallow_diffusion=True, k_step=20,
                            diffusion_method="ddim", diffusion_speedup=2)
    stages = [stage for stage, _ in watch.steps]
    first = stages.index("diffusion")
    assert stages[:first] == ["f0", "encoder", "synthesizer"] + ["vocoder"] * (first - 3)
    diffusion = [fraction for stage, fraction in watch.steps if stage == "diffusion"]
    assert diffusion == [0.0] + [k / 10 for k in range(10)]  # the stage's start, then each of the 10 calls
    assert stages[first + len(diffusion)] == "mel vocoder" and stages.count("mel vocoder") == 1


def sf_read(path):
    import soundfile as sf

    return sf.read(str(path), dtype="float32")[0]


def test_the_bar_moves_through_diffusion_and_the_mel_vocoder():
    from svc_core.ui.eta import DEFAULT_RATES, JobProgress, Work, job_rates

    progress = JobProgress(job_rates(DEFAULT_RATES, Work(denoiser_calls=10, mel_vocoder=True)))
    progress.plan([(4.0, False)], now=0.0)
    seen = []
    for stage, fraction in [("f0", 0.0), ("encoder", 0.0), ("synthesizer", 0.0), ("vocoder", 0.5),
                            *[("diffusion", k / 10) for k in range(10)], ("mel vocoder", 0.0)]:
        progress.step(0, stage, fraction)
        seen.append(progress.fraction)
    during = seen[4:15]
    assert len(set(during)) == len(during) and during == sorted(during)  # every denoiser call moves it
    assert during[-1] - during[0] > 0.3  # 10 calls: a large share of the work
    assert seen[-1] < 0.97  # the mel vocoder (and the finish) remain
    plain = JobProgress(job_rates(DEFAULT_RATES, Work()))
    plain.plan([(4.0, False)], now=0.0)
    plain.step(0, "vocoder", 1.0)
    assert plain.fraction > 0.95  # without a second stage nothing waits for diffusion
