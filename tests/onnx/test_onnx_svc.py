"""OnnxSvc end to end against the torch backend running the same graph (GraphSvc), and its settings."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.errors import OptionError
from svc_core.onnx import GraphSvc, OnnxSvc, physical_cores


@pytest.fixture(scope="module")
def pair(exported, encoder256):
    e = exported["mix"]
    return (GraphSvc(e.model, e.config, encoder_path=str(encoder256)),
            OnnxSvc(e.onnx, encoder_path=str(encoder256), device="auto"))


@pytest.mark.parametrize("speaker", ["tenor", {"alto": 0.3, "bass": 0.7}])
def test_onnx_svc_matches_torch(pair, clip, speaker):
    torch_svc, onnx_svc = pair
    a = torch_svc.slice_inference(*clip, speaker, transpose=2, f0_predictor="pm")
    b = onnx_svc.slice_inference(*clip, speaker, transpose=2, f0_predictor="pm")
    assert a.shape == b.shape == (len(clip[0]),) and np.abs(a).max() > 1e-2
    assert np.abs(a - b).max() < 1e-3


def test_vol_model_end_to_end(exported, encoder768, clip):
    e = exported["vol"]
    a = GraphSvc(e.model, e.config, encoder_path=str(encoder768)).slice_inference(*clip, 0, f0_predictor="pm")
    b = OnnxSvc(e.onnx, encoder_path=str(encoder768)).slice_inference(*clip, 0, f0_predictor="pm")
    assert np.abs(a - b).max() < 1e-3


def test_provider_and_threads_reported(pair):
    info = pair[1].session_info
    assert info.provider == "CPUExecutionProvider"  # no CUDA build in the test environment
    assert info.intra_op_threads == physical_cores() and info.inter_op_threads == 1
    assert "CPUExecutionProvider" in info.describe()


def test_onnx_svc_uses_the_manifest_config(pair):
    onnx_svc = pair[1]
    assert onnx_svc.speakers == ["alto", "tenor", "bass"] and onnx_svc.sample_rate == 44100
    assert onnx_svc.speaker_mix is True


def test_auto_f0_is_refused(pair, clip):
    with pytest.raises(OptionError, match="auto_predict_f0"):
        pair[1].slice_inference(*clip, "alto", f0_predictor="pm", auto_predict_f0=True)


def test_mix_refused_by_single_id_export(exported, encoder256, clip):
    e = exported["vec256l9"]
    svc = OnnxSvc(e.onnx, encoder_path=str(encoder256))
    with pytest.raises(OptionError, match="speaker mixing"):
        svc.slice_inference(*clip, {"spk0": 1.0}, f0_predictor="pm", clip_seconds=0)


def test_split_export_files_and_manifest(exported):
    for e in exported.values():
        split = e.manifest["split"]
        assert (e.onnx.parent / split["prior"]).is_file() and (e.onnx.parent / split["decoder"]).is_file()
        assert split["context_frames"] > 0 and split["parity"]["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("speaker", ["tenor", {"alto": 0.3, "bass": 0.7}])
def test_chunked_decoding_matches_one_shot(pair, clip, speaker):
    """16-frame chunks (the clip's pieces are ~130 frames, so several chunks with context each) give the samples
    of the one-shot graph, in torch and on ONNX Runtime's split pair."""
    torch_svc, onnx_svc = pair
    assert onnx_svc.split is not None  # the split pair is what runs chunked
    one_shot = torch_svc.slice_inference(*clip, speaker, f0_predictor="pm", decoder_chunk_frames=0)
    for svc in (torch_svc, onnx_svc):
        chunked = svc.slice_inference(*clip, speaker, f0_predictor="pm", decoder_chunk_frames=16)
        assert chunked.shape == one_shot.shape and np.abs(chunked - one_shot).max() < 1e-3
    # and the one-shot upstream file still runs when chunking is off
    off = onnx_svc.slice_inference(*clip, speaker, f0_predictor="pm", decoder_chunk_frames=0)
    assert np.abs(off - one_shot).max() < 1e-3


def test_export_without_split_runs_one_shot(exported, encoder256, clip, tmp_path):
    from svc_core.onnx import export_synthesizer

    e = exported["vec256l9"]
    path = tmp_path / "plain.onnx"
    manifest = export_synthesizer(e.model, e.config, path, split=False)
    assert "split" not in manifest and not (tmp_path / "plain.dec.onnx").exists()
    svc = OnnxSvc(path, encoder_path=str(encoder256))
    assert svc.split is None
    ref = GraphSvc(e.model, e.config, encoder_path=str(encoder256)).slice_inference(*clip, 0, f0_predictor="pm")
    assert np.abs(svc.slice_inference(*clip, 0, f0_predictor="pm") - ref).max() < 1e-3


def test_web_export_cache_completes_a_missing_split_pair(exported, encoder256, tmp_path):
    """The web backend's export cache: one export per checkpoint + config, with the split pair under the cache
    name; an export that lacks the pair (older version, deleted file) is redone."""
    from svc_core.ui.backends import onnx_file_for
    from svc_core.ui.models import ModelEntry

    e = exported["vec256l9"]
    entry = ModelEntry("v", "v", e.model, e.config, None, ("spk0",), "vec256l9")
    path = onnx_file_for(entry, tmp_path)
    stem = path.name[:-5]
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"{stem}.onnx", f"{stem}.onnx.json", f"{stem}.prior.onnx", f"{stem}.dec.onnx"}
    assert OnnxSvc(path, encoder_path=str(encoder256)).split is not None  # the cache names are the ones OnnxSvc looks for
    stamp = path.stat().st_mtime_ns
    assert onnx_file_for(entry, tmp_path) == path and path.stat().st_mtime_ns == stamp  # reused
    (tmp_path / f"{stem}.dec.onnx").unlink()
    onnx_file_for(entry, tmp_path)
    assert (tmp_path / f"{stem}.dec.onnx").is_file() and {p.name for p in tmp_path.iterdir()} == names


def test_padding_frames_are_not_decoded_on_onnx(pair, clip):
    """OnnxSvc's chunked vocoder skips the slice padding too: the kept samples equal the full decode's."""
    from svc_core.options import ConvertOptions
    from svc_core.timing import StageTimes

    onnx_svc = pair[1]
    segment = np.pad(clip[0][:44100], (22050, 22050))
    calls = []
    session = onnx_svc.decoder_session
    run = session.run

    class Counting:
        def run(self, names, feeds):
            calls.append(feeds["z"].shape[-1])
            return run(names, feeds)

    onnx_svc.decoder_session = Counting()
    try:
        opts = ConvertOptions(f0_predictor="pm")
        full = onnx_svc.infer_piece(segment, 44100, "alto", opts, StageTimes())
        full_frames, calls[:] = sum(calls), []
        kept = onnx_svc.infer_piece(segment, 44100, "alto", opts, StageTimes(), trim=22050)
    finally:
        onnx_svc.decoder_session = session
    assert kept.shape == (len(full) - 44100,) and np.abs(kept - full[22050:-22050]).max() < 1e-4
    assert sum(calls) < full_frames


def test_backend_default_chunk_lengths(pair):
    from svc_core.options import ConvertOptions

    torch_svc, onnx_svc = pair
    assert torch_svc.chunk_frames(ConvertOptions()) == 256 and onnx_svc.chunk_frames(ConvertOptions()) == 512
    assert onnx_svc.chunk_frames(ConvertOptions(decoder_chunk_frames=64)) == 64


def test_reduced_precision_is_refused_on_onnx(pair, clip):
    with pytest.raises(OptionError, match="torch-backend option"):
        pair[1].slice_inference(*clip, "alto", f0_predictor="pm", vocoder_precision="bf16")


def test_onnx_chunked_vocoder_is_timed_as_its_own_stage(pair, clip):
    from svc_core.options import ConvertOptions
    from svc_core.timing import StageTimes

    onnx_svc = pair[1]
    chunked = StageTimes()
    onnx_svc.infer_piece(clip[0][:44100], 44100, "alto", ConvertOptions(f0_predictor="pm"), chunked)
    one_shot = StageTimes()
    onnx_svc.infer_piece(clip[0][:44100], 44100, "alto", ConvertOptions(f0_predictor="pm", decoder_chunk_frames=0),
                         one_shot)
    assert chunked.seconds["vocoder"] > 0 and chunked.seconds["synthesizer"] > 0
    assert "vocoder" not in one_shot.seconds  # the one-shot graph cannot be split
