"""RVC voice folders and uploads on the page, with real RVC-layout files (random weights, RVC's layout:
tests/rvc_factories.py) and faiss indexes: what the picker lists and says, which knobs follow, what an upload must
pass (safe loading, a clear message for a wrong or odd file, a v1 model with a v2 index, an index of the wrong
width), and that the page's engine loads the voice."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rvc_factories import make_rvc_model, parity_model
from rvc_web_factories import index_name, make_rvc_index, rvc_voice_folder
from svc_core.errors import ModelError, SvcError
from svc_core.ui.models import ModelLibrary, describe_folder, scan_models_dir
from svc_core.ui.settings_section import voice_traits
from svc_core.ui.upload_store import UploadBudget
from svc_core.ui.views import control_set

TORCH_FAST = ["fp32", "bf16"]


@pytest.fixture(scope="module")
def rvc_models(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("rvc-models") / "models"
    rvc_voice_folder(models, "lead", version="v2", sr="40k")
    rvc_voice_folder(models, "hush", version="v1", sr="48k", f0=False, index=False, seed=1)
    rvc_voice_folder(models, "apl", version="v2", sr="40k", kind="applio", index=False, seed=2)
    rvc_voice_folder(models, "trainee", version="v1", sr="40k", kind="rvc-training", index=False, seed=3)
    return models


# ------------------------------------------------------------------ folders
def test_rvc_folders_are_listed_with_what_they_are(rvc_models):
    scan = scan_models_dir(rvc_models)
    assert scan.problems == ()
    by_key = {e.key: e for e in scan.entries}
    assert by_key["lead"].label == "lead (1 speaker; RVC v2 40k, with index; vec768l12)"
    assert by_key["hush"].label == "hush (1 speaker; RVC v1 48k, no pitch; vec256l9)"
    assert by_key["apl"].label == "apl (1 speaker; RVC v2 40k, Applio; vec768l12)"
    assert by_key["trainee"].label == "trainee (1 speaker; RVC v1 40k, training checkpoint; vec256l9)"
    assert {e.family for e in scan.entries} == {"rvc"}
    lead = by_key["lead"]
    assert lead.config_path is None and lead.speakers == ("0",) and not lead.onnx_only
    assert lead.cluster_path.name == index_name("lead", "v2")
    assert by_key["trainee"].model_path.name == "G_200.pth"  # an RVC G_*.pth is RVC's, not so-vits'
    assert by_key["trainee"].config_path.name == "config.json"  # RVC's training config beside it


def test_rvc_knobs_follow_the_voice(rvc_models):
    lead = control_set(voice_traits(describe_folder(rvc_models / "lead", "lead")), "torch", TORCH_FAST)
    assert lead.shows("protect") and lead.shows("transpose") and lead.cluster and not lead.noise
    assert lead.default("cluster_ratio") == 0.75 and "RVC v2 40k" in lead.note
    hush = control_set(voice_traits(describe_folder(rvc_models / "hush", "hush")), "torch", TORCH_FAST)
    assert not hush.shows("transpose") and not hush.shows("protect") and not hush.cluster
    assert hush.default("cluster_ratio") == 0.0 and "no pitch input" in hush.note


def test_a_damaged_or_foreign_pth_is_skipped_with_its_reason(rvc_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(rvc_models / "lead", models / "lead")
    broken = models / "broken" / "broken.pth"
    broken.parent.mkdir()
    broken.write_bytes((rvc_models / "lead" / "lead.pth").read_bytes()[:5000])
    odd = models / "odd" / "odd.pth"
    odd.parent.mkdir()
    import torch

    torch.save({"weight": {"enc_p.emb_phone.weight": torch.zeros(4, 100)}, "config": [1, 2]}, odd)
    scan = scan_models_dir(models)
    assert [e.key for e in scan.entries] == ["lead"]
    problems = dict(p.split(": ", 1) for p in scan.problems)
    assert set(problems) == {"broken", "odd"}
    assert "broken.pth" in problems["broken"]
    assert "odd.pth" in problems["odd"] and "Traceback" not in problems["odd"]


def test_the_page_engine_loads_an_rvc_voice_with_its_index(rvc_models, web_voice, tmp_path):
    """VoiceCache -> backends.load_voice -> Svc through the family table; a v1 voice takes the server's ContentVec
    (vec256l9) and its index; RVC's defaults apply."""
    from svc_core.ui import backends
    from svc_core.ui.voice_cache import VoiceCache

    folder = rvc_voice_folder(tmp_path / "models", "alto", version="v1", sr="40k", seed=4)
    entry = describe_folder(folder, "alto")
    assert backends.backend_for(entry, "onnx") == (backends.ONNX if backends.rvc_onnx_available() else "torch")
    voice, cached = VoiceCache(export_dir=tmp_path / "exports").get(entry, "torch")
    svc = voice.svc
    assert not cached and svc.family.is_rvc and svc.sample_rate == 40000 and svc.retriever is not None
    assert svc.encoder.name == "vec256l9" and svc.speakers == ["0"]
    assert svc.option_defaults() == {"loudness_mix": 0.25, "cluster_ratio": 0.75}


@pytest.mark.skipif(not __import__("svc_core.ui.backends", fromlist=["x"]).rvc_onnx_available(),
                    reason="RVC's ONNX export (svc_core.onnx.rvc_export / rvc_runtime) is not in this install")
def test_an_rvc_voice_on_the_fast_engine_is_exported_once_and_sounds_the_same(web_voice, tmp_path):
    """The Fast engine exports an RVC voice once (keyed by the file's sha256) and runs it on ONNX Runtime through
    the family table (RvcOnnxVoice), with RVC's recipe: the same audio as torch."""
    import numpy as np
    import soundfile as sf

    from svc_core.ui import backends
    from svc_core.ui.voice_cache import VoiceCache

    entry = describe_folder(rvc_voice_folder(tmp_path / "models", "alto", version="v1", seed=4), "alto")
    assert backends.backend_for(entry, "onnx") == "onnx"
    cache = VoiceCache(export_dir=tmp_path / "exports")
    fast, _ = cache.get(entry, "onnx")
    assert type(fast.svc.model).__name__ == "RvcOnnxVoice"
    assert backends.describe(fast.svc).startswith("onnxruntime")
    wav, sr = sf.read(str(web_voice.clip))
    out = fast.svc.slice_inference(wav, sr, "0", f0_predictor="pm", cluster_ratio=0.75)
    ref = cache.get(entry, "torch")[0].svc.slice_inference(wav, sr, "0", f0_predictor="pm", cluster_ratio=0.75)
    assert out.shape == ref.shape and np.abs(out - ref).max() < 1e-4
    exported = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "exports").glob("rvc-*")}
    assert len(exported) == 4  # RVC's interface file, the split pair, the manifest
    VoiceCache(export_dir=tmp_path / "exports").get(entry, "onnx")  # a restart: the export is reused
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "exports").glob("rvc-*")} == exported


def test_an_rvc_onnx_export_in_a_folder_is_a_voice_on_onnx_runtime(web_voice, tmp_path):
    """A folder holding an RVC voice's ONNX export (and its index): listed as RVC, runs on ONNX Runtime whatever
    engine is asked, with the knobs of an RVC voice and the same audio as the .pth in torch."""
    import numpy as np
    import soundfile as sf

    from svc_core.onnx.rvc_export import export_rvc
    from svc_core.ui import backends
    from svc_core.ui.voice_cache import VoiceCache

    source = rvc_voice_folder(tmp_path / "src", "alto", version="v1", seed=4)
    folder = tmp_path / "models" / "alto-fast"
    folder.mkdir(parents=True)
    export_rvc(source / "alto.pth", folder / "alto.onnx")
    shutil.copy(source / index_name("alto", "v1"), folder)
    entry = describe_folder(folder, "alto-fast")
    assert entry.label == "alto-fast (1 speaker; RVC v1 40k, ONNX file, with index; vec256l9)"
    assert (entry.family, entry.onnx_only, entry.config_path) == ("rvc-onnx", True, None)
    controls = control_set(voice_traits(entry), "torch", TORCH_FAST, rvc_onnx=True)
    assert (controls.engine, controls.engine_picker) == ("onnx", False) and controls.shows("protect")
    assert backends.backend_for(entry, "torch") == "onnx"
    fast = VoiceCache(export_dir=tmp_path / "exports").get(entry, "torch")[0].svc
    assert type(fast.model).__name__ == "RvcOnnxVoice" and fast.retriever is not None
    torch_entry = describe_folder(source, "alto")
    ref_svc = VoiceCache(export_dir=tmp_path / "exports").get(torch_entry, "torch")[0].svc
    wav, sr = sf.read(str(web_voice.clip))
    out = fast.slice_inference(wav, sr, "0", f0_predictor="pm", cluster_ratio=0.75)
    ref = ref_svc.slice_inference(wav, sr, "0", f0_predictor="pm", cluster_ratio=0.75)
    assert out.shape == ref.shape and np.abs(out - ref).max() < 1e-4


# ------------------------------------------------------------------ uploads
def test_an_rvc_model_uploads_alone_or_with_its_index(rvc_models, tmp_path):
    library = ModelLibrary(tmp_path / "models", tmp_path / "uploads")
    alone = library.add_upload([rvc_models / "apl" / "apl.pth"], owner="browser-a")
    assert alone.family == "rvc" and alone.config_path is None and alone.cluster_path is None
    assert alone.label.startswith("apl, RVC v2 40k, Applio (uploaded ") and alone.speakers == ("0",)
    lead = rvc_models / "lead"
    paired = library.add_upload([lead / "lead.pth", lead / index_name("lead", "v2")], owner="browser-a",
                                name="my lead")
    assert paired.cluster_path.name == index_name("lead", "v2") and paired.label.startswith("my lead (uploaded ")
    again = ModelLibrary(tmp_path / "models", tmp_path / "uploads")  # kept across a restart
    assert {e.key for e in again.upload_entries()} == {alone.key, paired.key}
    assert again.get(paired.key).rvc.label == "RVC v2 40k"


def test_a_v1_model_with_a_v2_index_is_refused_in_rvc_words(tmp_path, parity_dir):
    library = ModelLibrary(tmp_path / "models", tmp_path / "uploads")
    v2_index = parity_dir / "rvc" / "models" / "added_IVF26_Flat_nprobe_1_rvc_small_v2_40k_f0_v2.index"
    with pytest.raises(ModelError, match=r"was built for an RVC v2 model \(768-d features\), but this model is "
                                         r"RVC v1 \(256-d features\)"):
        library.add_upload([parity_model("v1_40k_f0"), v2_index])
    assert not any((tmp_path / "uploads").glob("upload-*"))  # nothing kept


def test_an_index_of_another_width_is_refused(tmp_path):
    model = make_rvc_model(tmp_path / "src" / "lead.pth", version="v2")
    index = make_rvc_index(tmp_path / "src" / "added_IVF4_Flat_nprobe_1_lead_v2.index", dim=100)
    with pytest.raises(ModelError, match=r"built for 100-d features, but this model is RVC v2 \(768-d"):
        ModelLibrary(tmp_path / "models", tmp_path / "uploads").add_upload([model, index])


def test_odd_rvc_uploads_get_a_clear_message(rvc_models, tmp_path):
    library = ModelLibrary(tmp_path / "models", tmp_path / "uploads")
    lead = rvc_models / "lead"
    trained = tmp_path / "trained_IVF4_Flat_nprobe_1_lead_v2.index"
    shutil.copyfile(lead / index_name("lead", "v2"), trained)
    with pytest.raises(ModelError, match="trained_IVF4_Flat_nprobe_1_lead_v2.index' is RVC's trained_"):
        library.add_upload([lead / "lead.pth", trained])
    half = tmp_path / "half.pth"
    half.write_bytes((lead / "lead.pth").read_bytes()[:3000])
    with pytest.raises(SvcError, match="half.pth"):
        library.add_upload([half])
    with pytest.raises(ModelError, match="it takes no diffusion model or ONNX content encoder"):
        encoder = tmp_path / "vec-768-layer-12.onnx"
        encoder.write_bytes(b"onnx")
        library.add_upload([lead / "lead.pth", encoder])
    small = ModelLibrary(tmp_path / "models", tmp_path / "uploads2", UploadBudget(max_bytes=100_000))
    with pytest.raises(ModelError, match="this server keeps at most 0 MB"):  # refused before any file is opened
        small.add_upload([lead / "lead.pth"])
    assert not any((tmp_path / "uploads").glob("upload-*"))
