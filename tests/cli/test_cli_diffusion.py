"""`infer` with shallow diffusion, only-diffusion and the enhancer: upstream's flags (-shd -dm -dc -ks -se -od -eh
-eak) and ours, on small upstream-layout files (so-vits G_0.pth, diffusion model_0.pt + config.yaml in the voice's
diffusion/ folder, openvpi-layout NSF-HiFiGAN in pretrain/nsf_hifigan/)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase
from diffusion_factories import make_diffusion_model
from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint
from svc_core.cli import main
from vocoder_factories import make_vocoder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-diffusion")
    speakers = {"spk0": 0, "spk1": 1}
    g, cfg = make_upstream_checkpoint(root / "voice", speech_encoder="vec256l9", seed=11, speakers=speakers)
    diff_model, diff_cfg = make_diffusion_model(root / "voice" / "diffusion", encoder="vec256l9", n_spk=2, seed=3)
    shallow_only = make_diffusion_model(root / "shallow-only", encoder="vec256l9", n_spk=2, seed=3,
                                        k_step_max=100)
    wrong = make_diffusion_model(root / "wrong", encoder="vec768l12", n_spk=2, seed=3)
    encoder = make_contentvec_checkpoint(root / "pretrain" / "checkpoint_best_legacy_500.pt", seed=4)
    make_vocoder(root / "pretrain" / "nsf_hifigan", seed=5)
    clip = root / "in.wav"
    sf.write(clip, sung_phrase(1.5), 44100, subtype="PCM_16")
    return {"model": g, "config": cfg, "diff_model": diff_model, "diff_config": diff_cfg, "encoder": encoder,
            "clip": clip, "root": root, "shallow_only": shallow_only, "wrong": wrong}


@pytest.fixture(autouse=True)
def pretrain(files, monkeypatch):
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(files["root"] / "pretrain"))


def _args(files, out, *extra, model=True):
    voice = ["-m", str(files["model"]), "-c", str(files["config"])] if model else []
    return ["infer", *voice, "-i", str(files["clip"]), "-o", str(out), "-s", "spk1", "-t", "2", "--encoder",
            str(files["encoder"]), "--f0", "pm", *extra]


def _audio(path):
    audio, sr = sf.read(path, dtype="float32")
    assert sr == 44100 and len(audio) == int(1.5 * 44100) and np.isfinite(audio).all()
    return audio


def test_upstream_shallow_diffusion_flags_find_the_voices_diffusion_folder(files, capsys):
    plain, diffused = files["root"] / "plain.wav", files["root"] / "shd.wav"
    assert main(_args(files, plain)) == 0
    capsys.readouterr()
    assert main(_args(files, diffused, "-shd", "-ks", "50")) == 0
    printed = capsys.readouterr().out
    assert "diffusion" in printed and "mel vocoder" in printed
    assert not np.allclose(_audio(plain), _audio(diffused), atol=1e-3)


def test_our_names_pick_sampler_and_speedup(files, capsys):
    a, b = files["root"] / "ddim.wav", files["root"] / "unipc.wav"
    common = ["--diffusion-model", str(files["diff_model"]), "--k-step", "40", "--diffusion-speedup", "10"]
    assert main(_args(files, a, "--shallow-diffusion", *common, "--diffusion-method", "ddim")) == 0
    assert main(_args(files, b, "--shallow-diffusion", *common, "--diffusion-method", "unipc")) == 0
    assert not np.allclose(_audio(a), _audio(b), atol=1e-4)


def test_only_diffusion_needs_no_sovits_model(files, capsys):
    out = files["root"] / "od.wav"
    assert main(_args(files, out, "-od", "-dm", str(files["diff_model"]), "-dc", str(files["diff_config"]),
                      model=False)) == 0
    assert "synthesizer" not in capsys.readouterr().out.split("stage")[1].split("total")[0]
    _audio(out)


def test_enhancer_with_adaptive_key(files, capsys):
    plain, a, b = files["root"] / "p.wav", files["root"] / "eh0.wav", files["root"] / "eh4.wav"
    assert main(_args(files, plain)) == 0
    assert main(_args(files, a, "-eh")) == 0
    assert main(_args(files, b, "-eh", "-eak", "4")) == 0
    assert "mel vocoder" in capsys.readouterr().out
    pa, ea, eb = _audio(plain), _audio(a), _audio(b)
    assert not np.allclose(pa, ea, atol=1e-3) and not np.allclose(ea, eb, atol=1e-3)


@pytest.mark.parametrize("extra, message", [
    (["-shd", "-ks", "200", "-dm", "SHALLOW"], "k_step 200 is above what this diffusion model was trained for"),
    (["-od", "-dm", "SHALLOW"], "Only-diffusion needs a diffusion model trained on the whole chain"),
    (["-shd", "-dm", "WRONG"], "data.encoder_out_channels is 768"),
    (["-shd", "-dm", "NOWHERE/model_0.pt"], "needs its config.yaml"),
    (["-ks", "0", "-shd"], "k_step is 0 steps; it must be 1 to 1000 steps"),
])
def test_refusals_name_the_problem(files, capsys, extra, message):
    extra = [{"SHALLOW": str(files["shallow_only"][0]), "WRONG": str(files["wrong"][0]),
              "NOWHERE/model_0.pt": str(files["root"] / "nowhere" / "model_0.pt")}.get(x, x) for x in extra]
    assert main(_args(files, files["root"] / "x.wav", *extra, model="-od" not in extra)) == 2
    assert message in capsys.readouterr().err


def test_missing_vocoder_says_where_to_put_it(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))  # holds no nsf_hifigan/, nor does any parent of the model
    monkeypatch.chdir(tmp_path)
    model, config = make_diffusion_model(tmp_path / "diff", encoder="vec256l9", n_spk=2, seed=3)
    assert main(_args(files, tmp_path / "x.wav", "-shd", "-dm", str(model))) == 2
    err = capsys.readouterr().err
    assert "nsf_hifigan" in err and "pretrain/" in err and "--vocoder" in err
