"""Synthesizer files with upstream's ONNX interface but no svc-studio manifest (svc_core/onnx/upstream_file.py).

Upstream's exporter cannot run here (it needs upstream's code), so the files are our exports made into what
upstream's exporter leaves: the graph with upstream's input/output names, dtypes and dynamic axes (spec h), named
`{name}_SoVits.onnx`, with no manifest (neither the sidecar JSON nor the metadata entry) and no split pair.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from svc_core.errors import ModelError, OptionError
from svc_core.onnx import MANIFEST_KEY, OnnxSvc
from svc_core.onnx.upstream_file import UPSTREAM_FORMAT, upstream_manifest


def _as_upstream(exported, folder, with_config=True):
    """`folder/nyaru_SoVits.onnx` (+ config.json beside it, as upstream's checkpoints/<name>/ layout)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(exported.onnx))
    kept = [p for p in proto.metadata_props if p.key != MANIFEST_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    target = folder / "nyaru_SoVits.onnx"
    onnx.save(proto, str(target))
    if with_config:
        shutil.copy(exported.config, folder / "config.json")
    return target


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


def test_cli_infers_with_an_upstream_file(exported, encoder256, clip, tmp_path, capsys):
    from svc_core.cli import main

    path = _as_upstream(exported["mix"], tmp_path / "nyaru")
    sf.write(tmp_path / "in.wav", clip[0], clip[1])
    assert main(["infer", "-m", str(path), "-c", str(path.with_name("config.json")), "--encoder", str(encoder256),
                 "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "-s", "bass", "--f0", "pm"]) == 0
    assert "synthesizer: onnxruntime" in capsys.readouterr().out
    assert abs(sf.info(str(tmp_path / "out.wav")).duration - 3.0) < 0.05
