"""ONNX files with upstream's interfaces but no svc-studio manifest (svc_core/onnx/upstream_file.py).

Upstream's exporters cannot run here (they need upstream's code), so the files are our exports made into what
upstream leaves: synthesizers with upstream's input/output names, dtypes and dynamic axes (spec h), named
`{name}_SoVits.onnx`, with no manifest (neither the sidecar JSON nor the metadata entry) and no split pair; content
encoders in the layout upstream's `*-onnx` encoders load (MoeSS's `vec-256-layer-9.onnx`: one input [1, 1, N], one
output [1, T, C], any tensor names).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from upstream_onnx_factories import as_upstream_encoder, as_upstream_synthesizer
from svc_core.errors import ModelError, OptionError
from svc_core.onnx import OnnxSvc
from svc_core.onnx.upstream_file import UPSTREAM_FORMAT, upstream_manifest


def _as_upstream(exported, folder, with_config=True):
    return as_upstream_synthesizer(exported.onnx, exported.config, folder, with_config)


@pytest.mark.parametrize("variant, encoder, speaker", [("mix", "encoder256", "tenor"), ("vol", "encoder768", 0)])
def test_upstream_file_converts_like_our_export(exported, variant, encoder, speaker, clip, tmp_path, request):
    """Speaker-mix (float sid) and vol-embedding files: the same samples as our export of the same graph run whole."""
    encoder_path = str(request.getfixturevalue(encoder))
    path = _as_upstream(exported[variant], tmp_path / variant)
    svc = OnnxSvc(path, encoder_path=encoder_path)  # config.json found beside the file
    assert svc.manifest["format"] == UPSTREAM_FORMAT and svc.split is None and svc.session is not None
    assert svc.speaker_mix == (variant == "mix") and svc.has_vol == (variant == "vol")
    ours = OnnxSvc(exported[variant].onnx, encoder_path=encoder_path)
    got = svc.slice_inference(*clip, speaker, f0_predictor="pm")
    want = ours.slice_inference(*clip, speaker, f0_predictor="pm", decoder_chunk_frames=0)
    assert got.shape == want.shape and np.abs(want).max() > 1e-2
    assert np.abs(got - want).max() < 1e-5
    with pytest.raises(OptionError, match="split export"):
        svc.slice_inference(*clip, speaker, f0_predictor="pm", vocoder_precision="int8")


def test_config_is_needed_and_must_match(exported, tmp_path):
    path = _as_upstream(exported["vol"], tmp_path / "alone", with_config=False)
    with pytest.raises(ModelError, match="needs the config.json of the model it was exported from"):
        OnnxSvc(path)
    with pytest.raises(ModelError, match="takes 768-dim content units but config.json says ssl_dim 256"):
        OnnxSvc(path, exported["mix"].config)
    mix = _as_upstream(exported["mix"], tmp_path / "mix", with_config=False)
    with pytest.raises(ModelError, match="mixes 3 speakers but config.json has 1"):
        upstream_manifest(mix, exported["vec256l9"].config)
    manifest = upstream_manifest(path, exported["vol"].config)  # given explicitly, from another folder
    assert manifest["speakers"] == exported["vol"].manifest["speakers"] and manifest["vol_embedding"]


def test_other_files_are_refused_with_a_message(exported, tmp_path):
    decoder = tmp_path / "model.dec.onnx"  # an ONNX file with other inputs (our split vocoder)
    shutil.copy(exported["mix"].onnx.with_name("model.dec.onnx"), decoder)
    with pytest.raises(ModelError, match="not a so-vits-svc synthesizer export: it has inputs z, f0, g"):
        OnnxSvc(decoder, exported["mix"].config)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not onnx" * 50)
    with pytest.raises(ModelError, match="junk.onnx' is not a readable ONNX file"):
        OnnxSvc(junk, exported["mix"].config)
    from svc_core.onnx import OnnxEncoder

    with pytest.raises(ModelError, match="ONNX file '.*nope.onnx' does not exist"):
        OnnxEncoder(tmp_path / "nope.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match="ONNX file 'empty.onnx' is empty"):
        OnnxSvc(tmp_path / "empty.onnx")


def test_cli_missing_onnx_model_is_a_message(tmp_path, capsys):
    from svc_core.cli import main

    sf.write(tmp_path / "in.wav", np.zeros(4410, dtype=np.float32), 44100)
    assert main(["infer", "-m", str(tmp_path / "nope.onnx"), "-i", str(tmp_path / "in.wav"),
                 "-o", str(tmp_path / "out.wav"), "-s", "0"]) == 2
    err = capsys.readouterr().err
    assert "nope.onnx' does not exist" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def encoder_files(encoder256, tmp_path_factory):
    from svc_core.onnx import export_encoder

    folder = tmp_path_factory.mktemp("upstream-encoder")
    ours = folder / "ours" / "vec256l9.onnx"
    export_encoder("vec256l9", encoder256, ours)
    return ours, as_upstream_encoder(ours, folder / "vec-256-layer-9.onnx")


def test_upstream_style_encoder_gives_our_features(encoder_files, exported, clip, tmp_path):
    from svc_core.onnx import OnnxEncoder

    ours, theirs = encoder_files
    enc = OnnxEncoder(theirs)
    assert (enc.name, enc.dim, enc.manifest["format"]) == ("vec256l9", 256, UPSTREAM_FORMAT)
    wav16 = np.random.default_rng(1).standard_normal(16000 * 2).astype(np.float32) * 0.1
    got, want = enc.encode(wav16), OnnxEncoder(ours).encode(wav16)
    assert got.shape == want.shape == (1, 256, want.shape[2]) and float((got - want).abs().max()) < 1e-5
    assert got.is_contiguous()
    # the whole pipeline with both files from upstream's side (synthesizer + encoder) and the config
    path = _as_upstream(exported["mix"], tmp_path / "nyaru")
    out = OnnxSvc(path, encoder=enc).slice_inference(*clip, "alto", f0_predictor="pm")
    ref = OnnxSvc(path, encoder=OnnxEncoder(ours)).slice_inference(*clip, "alto", f0_predictor="pm")
    assert np.abs(out - ref).max() < 1e-4


def test_upstream_style_encoder_refusals(encoder_files, exported, tmp_path):
    from svc_core.onnx import OnnxEncoder

    _, theirs = encoder_files
    unnamed = tmp_path / "my_encoder.onnx"
    shutil.copy(theirs, unnamed)
    with pytest.raises(ModelError, match="Which encoder is 'my_encoder.onnx'.*vec-768-layer-12.onnx"):
        OnnxEncoder(unnamed)
    misnamed = tmp_path / "vec-768-layer-12.onnx"
    shutil.copy(theirs, misnamed)
    with pytest.raises(ModelError, match="gives 256-dim features, but its name says vec768l12"):
        OnnxEncoder(misnamed)
    synth = _as_upstream(exported["mix"], tmp_path / "synth", with_config=False)
    with pytest.raises(ModelError, match="not an upstream-style content encoder"):
        OnnxEncoder(synth)


def test_cli_infers_with_an_upstream_file(exported, encoder_files, clip, tmp_path, capsys):
    """Synthesizer and content encoder both in upstream's ONNX layouts (as in a MoeVoiceStudio setup)."""
    from svc_core.cli import main

    path = _as_upstream(exported["mix"], tmp_path / "nyaru")
    sf.write(tmp_path / "in.wav", clip[0], clip[1])
    assert main(["infer", "-m", str(path), "-c", str(path.with_name("config.json")),
                 "--encoder", str(encoder_files[1]), "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"),
                 "-s", "bass", "--f0", "pm"]) == 0
    out = capsys.readouterr().out
    assert "synthesizer: onnxruntime" in out and "encoder: vec256l9" in out
    assert abs(sf.info(str(tmp_path / "out.wav")).duration - 3.0) < 0.05


def _descriptor(exported, **changes):
    """The export's descriptor. Upstream writes HiddenSize / Hubert from gin_channels, which equals ssl_dim in every
    real config; the small test models have gin_channels 32, so those two come from ssl_dim here."""
    dim = exported.manifest["ssl_dim"]
    doc = dict(exported.manifest["moevoicestudio"], Folder="nyaru", Name="nyaru", HiddenSize=dim,
               Hubert=f"vec-{dim}-layer-{12 if dim == 768 else 9}")
    doc.update(changes)
    return doc


def test_moevoicestudio_descriptor_instead_of_config(exported, encoder256, clip, tmp_path):
    """checkpoints/nyaru.json (what upstream's exporter writes beside the folder; MoeVoiceStudio packs carry it
    instead of config.json) is enough to run the file."""
    import json

    path = _as_upstream(exported["mix"], tmp_path / "checkpoints" / "nyaru", with_config=False)
    (tmp_path / "checkpoints" / "nyaru.json").write_text(json.dumps(_descriptor(exported["mix"])))
    svc = OnnxSvc(path, encoder_path=str(encoder256))
    assert svc.manifest["config_file"].endswith("nyaru.json")
    assert svc.speakers == ["alto", "tenor", "bass"] and svc.config.speech_encoder == "vec256l9"
    want = OnnxSvc(exported["mix"].onnx, encoder_path=str(encoder256)).slice_inference(
        *clip, "bass", f0_predictor="pm", decoder_chunk_frames=0)
    got = svc.slice_inference(*clip, "bass", f0_predictor="pm")
    assert np.abs(got - want).max() < 1e-5


@pytest.mark.parametrize("changes, message", [
    ({"Type": "DiffSvc"}, "describes a 'DiffSvc' model"),
    ({"SoVits4": False, "SoVits3": True}, "so-vits-svc 3.0 model"),
    ({"Rate": 32000}, "says 32000 Hz with hop 512"),
    ({"HiddenSize": 768}, "does not give HiddenSize 768"),
])
def test_descriptors_it_cannot_use(exported, changes, message, tmp_path):
    import json

    from svc_core.onnx.moevs import load_voice_config

    path = tmp_path / "nyaru.json"
    path.write_text(json.dumps(_descriptor(exported["mix"], **changes)))
    with pytest.raises(ModelError, match=message):
        load_voice_config(path)


@pytest.mark.parametrize("encoder, hubert", [("vec768l12", "vec-768-layer-12"), ("vec256l9", "vec-256-layer-9"),
                                             ("vec768l9-onnx", "vec-768-layer-9"), ("vec256l12-onnx", "vec-256-layer-12"),
                                             ("hubertsoft", "hubert-soft"), ("phonevec256", None),
                                             ("whisper-ppg", None)])
def test_descriptor_names_the_configs_encoder(encoder, hubert):
    """Our descriptor's "Hubert" is the config's encoder under MoeVoiceStudio's file name (upstream's exporter
    derives it from gin_channels, wrong for vec768l9 / vec256l12 / hubertsoft); no descriptor for an encoder
    MoeVoiceStudio lacks. Where there is one, reading it back gives the same encoder and speakers."""
    from svc_core.config import ENCODER_DIMS, config_from_dict, template_config
    from svc_core.onnx.moevs import config_from_descriptor, descriptor_for

    config = config_from_dict(template_config(encoder, speakers={"alto": 0, "bass": 1}))
    doc = descriptor_for(config, "nyaru", speaker_mix=True)
    if hubert is None:
        assert doc is None
        return
    assert doc["Hubert"] == hubert and doc["HiddenSize"] == ENCODER_DIMS[encoder]
    back = config_from_dict(config_from_descriptor(doc, "nyaru.json"), source="nyaru.json")
    assert ENCODER_DIMS[back.speech_encoder] == ENCODER_DIMS[encoder]
    assert back.speech_encoder.removesuffix("-onnx") == encoder.removesuffix("-onnx")
    assert back.spk == {"alto": 0, "bass": 1}


def test_export_without_a_moevoicestudio_encoder_says_so(tmp_path, capsys):
    """export-onnx of a model on an encoder MoeVoiceStudio lacks (the starter voice's phonevec256) writes no
    descriptor and says why, instead of one naming the wrong encoder."""
    import json
    from pathlib import Path

    from svc_core.cli import main

    voice = Path(__file__).resolve().parents[2] / "voices" / "starter-sovits"
    out = tmp_path / "starter.onnx"
    assert main(["export-onnx", "-m", str(voice / "G_1000.pth"), "-c", str(voice / "config.json"), "-o", str(out),
                 "--no-split", "--no-verify"]) == 0
    assert "no MoeVoiceStudio descriptor: MoeVoiceStudio has no phonevec256 content encoder" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".onnx.json").read_text())["moevoicestudio"] is None
