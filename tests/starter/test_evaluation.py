"""eval-convert: the ../shared/eval inputs converted with a voice folder (its own encoder file inside)."""
from __future__ import annotations

import json

import pytest
import soundfile as sf

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint
from svc_core.errors import SpeakerError
from svc_core.starter.__main__ import main
from svc_core.starter.evaluation import EvalSettings, convert_eval_inputs


@pytest.fixture()
def voice_and_inputs(tmp_path):
    voice = tmp_path / "starter"
    make_upstream_checkpoint(voice, ssl_dim=64, speech_encoder="vec768l12",
                             speakers={"flite_awb": 0, "fest_ked": 1})
    make_contentvec_checkpoint(voice / "checkpoint_best_legacy_500.pt")  # shipped inside the folder
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    manifest = {}
    for i, (target, transpose) in enumerate((("flite_awb", 4), ("fest_ked", -3))):
        pair = f"S00{i}_M00_esp_m3__to__{target}"
        sf.write(inputs / f"{pair}.wav", sung_phrase(1.2, seed=i), 44100)
        manifest[pair] = {"source_voice": "esp_m3", "target_voice": target, "transpose": transpose, "text": "x"}
    (inputs / "manifest.json").write_text(json.dumps(manifest))
    return voice, inputs, manifest


def test_every_pair_is_converted_to_its_target(voice_and_inputs, tmp_path, capsys):
    voice, inputs, manifest = voice_and_inputs
    assert main(["eval-convert", "--inputs", str(inputs), "--voice", str(voice), "--out", str(tmp_path / "out"),
                 "--f0", "pm"]) == 0
    assert "converted 2 pairs" in capsys.readouterr().out
    for pair in manifest:
        info = sf.info(str(tmp_path / "out" / f"{pair}.wav"))
        assert info.samplerate == 44100 and abs(info.duration - 1.2) < 0.05


def test_unknown_target_is_named(voice_and_inputs, tmp_path):
    voice, inputs, manifest = voice_and_inputs
    manifest["S009_M01_esp_f4__to__flite_slt"] = {"source_voice": "esp_f4", "target_voice": "flite_slt",
                                                   "transpose": 0, "text": "y"}
    (inputs / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SpeakerError, match="flite_slt"):
        convert_eval_inputs(EvalSettings(str(inputs), str(voice), str(tmp_path / "o"), f0="pm"), progress=False)


def _tiny_vocoder(folder):
    """A random openvpi-layout vocoder (train-vocoder's file writer), small enough for a test."""
    import torch

    from svc_core.vocoders.nsf_hifigan import MelGenerator, VocoderConfig
    from svc_core.vocoders.train import files

    cfg = VocoderConfig(upsample_initial_channel=32, resblock="2", resblock_kernel_sizes=(3,),
                        resblock_dilation_sizes=((1, 3),))
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    files.write_config(folder, cfg)
    torch.save(files.generator_payload(MelGenerator(cfg)), folder / "model")
    return folder


@pytest.mark.parametrize("second", ["shallow", "only", "enhance"])
def test_a_diffusion_second_stage_runs_with_the_given_files(voice_and_inputs, tmp_path, capsys, second):
    import torch
    import yaml

    from diffusion_factories import make_diffusion_config_dict, make_random_unit2mel

    if second == "enhance":
        pytest.importorskip("svc_core.vocoders.enhancer")  # the vocoder helper's enhancer, merged separately
    _, inputs, manifest = voice_and_inputs
    speakers = {"flite_awb": 0, "fest_ked": 1}
    voice = tmp_path / "voice256"  # vec256l9 on the tiny ContentVec gives 256-dim units, as the diffusion yaml says
    make_upstream_checkpoint(voice, ssl_dim=256, speech_encoder="vec256l9", speakers=speakers)
    make_contentvec_checkpoint(voice / "checkpoint_best_legacy_500.pt")
    run = tmp_path / "diff_run"  # a train-diff run folder: model_{step}.pt + config.yaml
    run.mkdir()
    doc = make_diffusion_config_dict(encoder="vec256l9", n_spk=2, speakers=speakers, k_step_max=0)
    torch.save({"global_step": 10, "model": make_random_unit2mel(doc).state_dict()}, run / "model_10.pt")
    (run / "config.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    vocoder = _tiny_vocoder(tmp_path / "voc")
    out = tmp_path / f"out_{second}"
    assert main(["eval-convert", "--inputs", str(inputs), "--voice", str(voice), "--out", str(out), "--f0", "pm",
                 "--second", second, "--diffusion", str(run), "--vocoder", str(vocoder), "-ks", "20",
                 "--method", "ddim", "--speedup", "10"]) == 0
    assert "converted 2 pairs" in capsys.readouterr().out
    for pair in manifest:
        info = sf.info(str(out / f"{pair}.wav"))
        assert info.samplerate == 44100 and abs(info.duration - 1.2) < 0.05


def test_a_missing_diffusion_model_is_named(voice_and_inputs, tmp_path):
    from svc_core.errors import ModelError
    from svc_core.starter.evaluation import SecondStage

    voice, inputs, _ = voice_and_inputs
    with pytest.raises(ModelError, match="diffusion"):
        convert_eval_inputs(EvalSettings(str(inputs), str(voice), str(tmp_path / "o"), f0="pm",
                                         second=SecondStage("shallow")), progress=False)
    with pytest.raises(ModelError, match="model_"):
        convert_eval_inputs(EvalSettings(str(inputs), str(voice), str(tmp_path / "o"), f0="pm",
                                         second=SecondStage("shallow", diffusion=str(tmp_path))), progress=False)
