"""Shallow diffusion on ONNX Runtime (svc_core/onnx/diffusion_export.py, diffusion_stage.py) against upstream's
numbers (../shared/compat/parity/diffusion): the exported denoiser, a whole sampler run, the mel vocoder, and
Svc.slice_inference end to end with the ORT stage; plus OnnxSvc running both its synthesizer and diffusion on ORT,
the export cache and the CLI. Exports of the dev models go to tmp folders (a few seconds)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from diffusion.test_e2e_parity import AUDIO_TOL, MEL_TOL, UpstreamDraws
from stored_units import StoredUnits
from svc_core.audio import load_audio
from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.diffusion.stage import DiffusionStage
from svc_core.errors import ModelError, OptionError
from svc_core.onnx.diffusion_export import DENOISER_KIND, VOCODER_KIND, export_diffusion
from svc_core.onnx.diffusion_stage import OnnxDenoiser, OnnxDiffusionStage, OnnxMelGenerator
from svc_core.onnx.export import read_manifest
from svc_core.pipeline import Svc

DENOISER_TOL = 1e-5
ONLY_DIFFUSION_AUDIO_TOL = 3e-4  # see test_end_to_end_matches_upstream


@pytest.fixture(scope="module")
def diff_dir(parity_dir):
    return parity_dir / "diffusion"


@pytest.fixture(scope="module")
def dev_files(diff_dir):
    models = diff_dir / "models"
    return (models / "diffusion_dev" / "model_0.pt", models / "diffusion_dev" / "config.yaml",
            models / "nsf_hifigan_dev" / "model")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("diffusion-onnx")


@pytest.fixture(scope="module", params=["projected", "cond"])
def ort_stage(request, dev_files, export_dir):
    model, config, vocoder = dev_files
    return OnnxDiffusionStage(model, config, vocoder, export_dir=export_dir, onnx_device="cpu", threads=1,
                              condition=request.param)


def test_stage_runs_on_onnx(ort_stage):
    assert isinstance(ort_stage.model.decoder.denoise_fn, OnnxDenoiser)
    assert isinstance(ort_stage.vocoder.generator, OnnxMelGenerator)
    assert not any(n.startswith("decoder.denoise_fn.residual_layers") for n, _ in ort_stage.model.named_parameters())
    manifests = {k: read_manifest(p) for k, p in ort_stage.onnx_files.items()}
    assert manifests["denoiser"]["kind"] == DENOISER_KIND and manifests["vocoder"]["kind"] == VOCODER_KIND
    assert manifests["denoiser"]["parity"]["max_abs_diff"] <= DENOISER_TOL
    assert ort_stage.session_info.intra_op_threads == 1


def test_denoiser_matches_upstream(ort_stage, diff_dir):
    d = np.load(diff_dir / "denoiser.npz")
    den = ort_stage.model.decoder.denoise_fn
    x, cond = torch.from_numpy(d["x"]), torch.from_numpy(d["cond"])
    eps_fn = den.cached(cond)
    for steps, refs in ((d["steps_int"], d["eps_int"]), (d["steps_float"], d["eps_float"])):
        for step, ref in zip(steps, refs):
            t = torch.tensor([step])  # int64 steps are cast to float32 exactly
            assert float(np.abs(eps_fn(x, t)[0].numpy() - ref).max()) <= DENOISER_TOL, step
            assert float(np.abs(den(x, t, cond)[0].numpy() - ref).max()) <= DENOISER_TOL, step
    b2 = den(torch.from_numpy(d["b2_x"]), torch.from_numpy(d["b2_t"]), torch.from_numpy(d["b2_cond"]))
    assert float(np.abs(b2.numpy() - d["b2_eps"]).max()) <= DENOISER_TOL
    assert float(np.abs(d["eps_int"][0] - d["eps_int"][-1]).max()) > 0.05  # the step matters in these numbers


@pytest.mark.parametrize("npz, method, case, k_step", [
    ("sampler_dpm_solver_pp", "dpm-solver++", "k100", 100),  # float steps
    ("sampler_ddim", "ddim", "k37", 37),  # int64 steps
])
def test_sampler_run_matches_upstream(ort_stage, diff_dir, npz, method, case, k_step):
    d = np.load(diff_dir / f"{npz}.npz")
    noise = RecordedNoise([d[f"{case}_noise"]])
    with torch.no_grad():
        mel = ort_stage.model(torch.from_numpy(d["units"]), torch.from_numpy(d["f0"]), torch.from_numpy(d["vol"]),
                              spk_id=torch.from_numpy(d["spk_id"]), gt_spec=torch.from_numpy(d["gt_mel"]),
                              k_step=k_step, method=method, speedup=10, noise=noise)
    assert noise.exhausted
    assert float(np.abs(mel.numpy() - d[f"{case}_mel"]).max()) <= MEL_TOL


@pytest.mark.parametrize("chunk_frames", [0, 24])
def test_vocoder_matches_upstream(ort_stage, diff_dir, chunk_frames):
    d = np.load(diff_dir / "vocoder.npz")
    hop, frames = 512, d["mel"].shape[1]
    cuts = list(range(chunk_frames * hop, frames * hop, chunk_frames * hop)) if chunk_frames else []
    noise = RecordedNoise([d["rand_ini"]] + np.split(d["sine_noise"], cuts, axis=1))  # one draw per chunk
    audio = ort_stage.vocoder.decode(torch.from_numpy(d["mel"]), torch.from_numpy(d["f0"]), noise=noise,
                                     chunk_frames=chunk_frames)
    assert noise.exhausted
    assert float(np.abs(audio.numpy() - d["audio"][:, 0]).max()) <= AUDIO_TOL


def _convert_on_onnx(parity_dir, export_dir, only_diffusion: bool):
    """tests/diffusion/test_e2e_parity.py's conversion with the diffusion stage moved to ONNX Runtime."""
    diff_dir = parity_dir / "diffusion"
    front = np.load(diff_dir / "e2e_frontend.npz")
    ref = np.load(diff_dir / ("e2e_only_diffusion.npz" if only_diffusion else "e2e_shallow.npz"))
    models, sovits = diff_dir / "models", parity_dir / "models" / "small_vec768l12"
    paths = (None, None) if only_diffusion else (sovits / "G_0.pth", sovits / "config.json")
    svc = Svc(*paths, encoder=StoredUnits("vec768l12", 768, front["wav16k"], front["units_raw"]),
              diffusion_model_path=models / "diffusion_dev" / "model_0.pt",
              diffusion_config_path=models / "diffusion_dev" / "config.yaml",
              vocoder_path=models / "nsf_hifigan_dev" / "model")
    svc.diffusion = OnnxDiffusionStage.from_stage(svc.diffusion, export_dir, "cpu", 1)
    svc.noise_factory = lambda opts: UpstreamDraws(ref["diff_noise"], ref["voc_rng_state"])
    mels = []
    forward = svc.diffusion.model.forward
    svc.diffusion.model.forward = lambda *a, **kw: mels.append(forward(*a, **kw)) or mels[-1]
    wav, sr = load_audio(parity_dir / "sweep5s_44k.wav")
    out = svc.slice_inference(wav, sr, "spk0", transpose=3, f0_predictor="pm", noise_scale=0.0, slice_db=-40,
                              pad_seconds=0.5, cluster_ratio=0, loudness_mix=1, k_step=100,
                              shallow_diffusion=not only_diffusion, only_diffusion=only_diffusion)
    return ref, out, svc, mels[0].numpy()


@pytest.mark.parametrize("only_diffusion", [False, True], ids=["shallow", "only_diffusion"])
def test_end_to_end_matches_upstream(parity_dir, export_dir, only_diffusion):
    ref, out, svc, mel = _convert_on_onnx(parity_dir, export_dir, only_diffusion)
    assert isinstance(svc.diffusion, OnnxDiffusionStage)
    assert out.shape == ref["output"].shape
    if only_diffusion:  # from pure noise the random dev denoiser amplifies float rounding ~157x (|mel| ~ 5e3,
        # parity README): ORT's ~6e-7 per call becomes 1.2e-4 in the audio (torch's own rounding: < 1e-4)
        assert np.abs(mel - ref["diff_mel"]).max() <= MEL_TOL * float(np.abs(ref["diff_mel"]).max())
        assert np.abs(out - ref["output"]).max() <= ONLY_DIFFUSION_AUDIO_TOL
    else:
        assert np.abs(mel - ref["diff_mel"]).max() <= MEL_TOL
        assert np.abs(out - ref["output"]).max() <= AUDIO_TOL
    assert np.abs(ref["output"]).max() > 0.05
    assert {"diffusion", "mel vocoder"} <= set(svc.last_times.seconds)


def test_export_cache_is_reused_and_checked(dev_files, export_dir, tmp_path):
    model, config, vocoder = dev_files
    first = OnnxDiffusionStage(model, config, vocoder, export_dir=tmp_path, onnx_device="cpu", threads=1)
    stamps = {k: p.stat().st_mtime_ns for k, p in first.onnx_files.items()}
    second = OnnxDiffusionStage(model, config, vocoder, export_dir=tmp_path, onnx_device="cpu", threads=1)
    assert {k: p.stat().st_mtime_ns for k, p in second.onnx_files.items()} == stamps  # not exported again
    assert not list(tmp_path.glob(".partial-*"))
    side = first.onnx_files["denoiser"].with_name(first.onnx_files["denoiser"].name + ".json")
    doc = json.loads(side.read_text())
    doc["source_checkpoint"]["sha256"] = "0" * 64  # a file exported from other weights under this name
    side.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="other weights"):
        OnnxDiffusionStage(model, config, vocoder, export_dir=tmp_path, onnx_device="cpu", threads=1)


def test_torch_stage_moved_keeps_its_numbers(dev_files, export_dir, diff_dir):
    """from_stage on a loaded torch stage: the only-diffusion mel (100 dpm-solver++ steps from noise) as torch."""
    model, config, vocoder = dev_files
    d = np.load(diff_dir / "sampler_dpm_solver_pp.npz")
    args = [torch.from_numpy(d[k]) for k in ("units", "f0", "vol")]
    torch_stage = DiffusionStage(model, config, vocoder)
    with torch.no_grad():
        ref = torch_stage.model(*args, spk_id=torch.from_numpy(d["spk_id"]), k_step=1000, method="unipc",
                                speedup=10, noise=TorchNoise.seeded(5))
        moved = OnnxDiffusionStage.from_stage(torch_stage, export_dir, "cpu", 1)
        got = moved.model(*args, spk_id=torch.from_numpy(d["spk_id"]), k_step=1000, method="unipc", speedup=10,
                          noise=TorchNoise.seeded(5))
    assert float((got - ref).abs().max()) <= MEL_TOL * float(ref.abs().max())  # |mel| ~ 1e3 from pure noise


@pytest.fixture(scope="module")
def sovits_onnx(parity_dir, tmp_path_factory):
    """The small so-vits model exported (synthesizer + split pair) into its own folder."""
    from svc_core.onnx import export_synthesizer

    sovits = parity_dir / "models" / "small_vec768l12"
    folder = tmp_path_factory.mktemp("sovits-onnx")
    export_synthesizer(sovits / "G_0.pth", sovits / "config.json", folder / "model.onnx", verify=False)
    return folder


def test_onnx_svc_runs_diffusion_on_onnx(parity_dir, sovits_onnx):
    """OnnxSvc (exported synthesizer) with a diffusion model: the stage runs on ORT with the same numbers as the
    torch export graph (GraphSvc) + torch diffusion, from the same seeded draws."""
    from svc_core.onnx import GraphSvc, OnnxSvc

    diff_dir, tmp_path = parity_dir / "diffusion", sovits_onnx
    front = np.load(diff_dir / "e2e_frontend.npz")
    models, sovits = diff_dir / "models", parity_dir / "models" / "small_vec768l12"
    diffusion = dict(diffusion_model_path=models / "diffusion_dev" / "model_0.pt",
                     diffusion_config_path=models / "diffusion_dev" / "config.yaml",
                     vocoder_path=models / "nsf_hifigan_dev" / "model")
    encoder = StoredUnits("vec768l12", 768, front["wav16k"], front["units_raw"])
    ort = OnnxSvc(tmp_path / "model.onnx", encoder=encoder, device="cpu", threads=1, **diffusion)
    ref = GraphSvc(sovits / "G_0.pth", sovits / "config.json", encoder=encoder, **diffusion)
    assert isinstance(ort.diffusion, OnnxDiffusionStage) and type(ref.diffusion) is DiffusionStage
    assert ort.diffusion.onnx_files["denoiser"].parent == tmp_path
    wav, sr = load_audio(parity_dir / "sweep5s_44k.wav")
    kw = dict(transpose=3, f0_predictor="pm", noise_scale=0.0, slice_db=-40, pad_seconds=0.5, k_step=100,
              shallow_diffusion=True, decoder_chunk_frames=128)
    out, want = ort.slice_inference(wav, sr, "spk0", **kw), ref.slice_inference(wav, sr, "spk0", **kw)
    assert out.shape == want.shape
    assert np.abs(out - want).max() <= 1e-3  # ORT synthesizer + diffusion vs torch (float rounding through 3 nets)
    assert "load diffusion onnx" in ort.load_times.seconds
    kept = OnnxSvc(tmp_path / "model.onnx", encoder=encoder, device="cpu", diffusion_backend="torch", **diffusion)
    assert type(kept.diffusion) is DiffusionStage
    with pytest.raises(OptionError, match="diffusion_backend"):
        OnnxSvc(tmp_path / "model.onnx", encoder=encoder, diffusion_backend="tensorrt", **diffusion)


def test_onnx_svc_enhancer_on_onnx(parity_dir, sovits_onnx, tmp_path):
    """The enhancer (no diffusion model) of an OnnxSvc decodes on ORT, with the torch graph + torch vocoder's
    numbers from the same seeded draws."""
    from svc_core.onnx import GraphSvc, OnnxSvc

    front = np.load(parity_dir / "diffusion" / "e2e_frontend.npz")
    sovits = parity_dir / "models" / "small_vec768l12"
    vocoder = parity_dir / "diffusion" / "models" / "nsf_hifigan_dev" / "model"
    encoder = StoredUnits("vec768l12", 768, front["wav16k"], front["units_raw"])
    ort = OnnxSvc(sovits_onnx / "model.onnx", encoder=encoder, device="cpu", threads=1, vocoder_path=vocoder,
                  diffusion_export_dir=tmp_path)
    ref = GraphSvc(sovits / "G_0.pth", sovits / "config.json", encoder=encoder, vocoder_path=vocoder)
    wav, sr = load_audio(parity_dir / "sweep5s_44k.wav")
    kw = dict(transpose=3, f0_predictor="pm", noise_scale=0.0, slice_db=-40, pad_seconds=0.5, enhance=True)
    out, want = ort.slice_inference(wav, sr, "spk0", **kw), ref.slice_inference(wav, sr, "spk0", **kw)
    assert isinstance(ort.enhancer().vocoder.generator, OnnxMelGenerator)
    assert list(tmp_path.glob("mel-vocoder-*.onnx"))
    assert out.shape == want.shape and np.abs(out - want).max() <= 1e-3


def test_cli_export(dev_files, tmp_path, capsys):
    from svc_core.cli import main

    model, config, vocoder = dev_files
    out = tmp_path / "diffusion.onnx"
    assert main(["export-onnx", "--diffusion", str(model), "--diffusion-config", str(config), "--vocoder",
                 str(vocoder), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    den, voc = read_manifest(out), read_manifest(tmp_path / "diffusion.vocoder.onnx")
    assert den["kind"] == DENOISER_KIND and den["condition"] == "projected" and den["n_layers"] == 4
    assert voc["kind"] == VOCODER_KIND and voc["context_frames"] > 0
    assert den["source_checkpoint"]["sha256"] in printed or den["source_checkpoint"]["sha256"][:12] in printed
    assert "max abs" in printed
    assert main(["export-onnx", "--diffusion", str(model), "-o", str(tmp_path / "x.onnx")]) != 0
    assert "--diffusion-config config.yaml" in capsys.readouterr().err


def test_export_refuses_bad_condition(dev_files, tmp_path):
    model, config, _ = dev_files
    with pytest.raises(OptionError, match="projected or cond"):
        export_diffusion(model, config, tmp_path / "d.onnx", condition="both")
