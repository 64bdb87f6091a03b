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
