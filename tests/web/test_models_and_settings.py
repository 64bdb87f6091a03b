"""Command-line settings, the models folder scan, and model uploads (checked through svc_core, safe loading)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from svc_core.errors import ModelError, SvcError, UnsafeFileError
from svc_core.ui.convert_tab import f0_choices, models_notice
from svc_core.ui.models import ModelLibrary, scan_models_dir
from svc_core.ui.upload_store import UploadBudget
from svc_core.ui.settings import DEFAULT_HOST, DEFAULT_PORT, SettingsError, parse_args, parse_auth, parse_size


# ------------------------------------------------------------------ settings
def test_defaults_bind_loopback_7860():
    s = parse_args([])
    assert (s.host, s.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 7860)
    assert s.auth == () and s.concurrency == 1 and s.queue_size == 16 and s.models_dir.name == "models"
    assert s.max_file_size == 200 * 1024**2


def test_every_option():
    s = parse_args(["--host", "0.0.0.0", "--port", "8000", "--auth", "ann:pw", "--root-path", "/svc/",
                    "--max-file-size", "5mb", "--concurrency", "2", "--queue-size", "3", "--models-dir", "voices"])
    assert s.host == "0.0.0.0" and s.port == 8000 and s.auth == (("ann", "pw"),) and s.root_path == "/svc"
    assert s.max_file_size == 5 * 1024**2 and s.concurrency == 2 and s.queue_size == 3
    assert s.models_dir == Path("voices").resolve()


def test_auth_file(tmp_path):
    f = tmp_path / "users"
    f.write_text("# comment\n\nann:pw:with:colons\nbob:x\n")
    assert parse_auth(str(f)) == (("ann", "pw:with:colons"), ("bob", "x"))
    f.write_text("nopassword\n")
    with pytest.raises(SettingsError, match="line 1"):
        parse_auth(str(f))


@pytest.mark.parametrize("argv, message", [
    (["--auth", "justaname"], "not USER:PASS"),
    (["--auth", ":pw"], "both parts"),
    (["--max-file-size", "lots"], "not a size"),
    (["--port", "70000"], "TCP port"),
    (["--concurrency", "0"], "1 or more"),
    (["--queue-size", "0"], "1 or more"),
    (["--root-path", "svc"], "must start with /"),
])
def test_bad_values_are_readable(argv, message):
    with pytest.raises(SettingsError, match=message):
        parse_args(argv)


def test_sizes():
    assert parse_size("200mb") == 200 * 1024**2 and parse_size("1GB") == 1024**3 and parse_size("512") == 512


# ------------------------------------------------------------------ models folder
def test_scan_finds_voice_and_explains_skipped(web_voice, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(web_voice.models_dir / "demo-voice", models / "voice-a")
    (models / "voice-a" / "G_800.pth").write_bytes((models / "voice-a" / "G_0.pth").read_bytes())
    (models / "only-config").mkdir()
    shutil.copy(web_voice.models_dir / "demo-voice" / "config.json", models / "only-config")
    scan = scan_models_dir(models)
    assert [e.key for e in scan.entries] == ["voice-a"]
    entry = scan.entries[0]
    assert entry.model_path.name == "G_800.pth"  # the highest step
    assert entry.speakers == ("alto", "tenor", "bass") and entry.speech_encoder == "vec256l9"
    assert scan.problems == ("only-config: no G_*.pth generator (or RVC model <name>.pth, W_*.pth WORLD voice, or "
                             "<name>_SoVits.onnx export) in only-config/",)


def test_scan_finds_onnx_only_voices(web_voice, tmp_path):
    """A folder with an ONNX export and no G_*.pth is a voice; our split / int8 companions are not candidates."""
    models = tmp_path / "models"
    config = web_voice.models_dir / "demo-voice" / "config.json"
    for name, files in {"upstream": ["nyaru_SoVits.onnx", "vec-256-layer-9.onnx"],
                        "ours": ["model.onnx", "model.prior.onnx", "model.dec.onnx", "model.dec.int8.onnx"],
                        "unclear": ["a.onnx", "b.onnx"]}.items():
        (models / name).mkdir(parents=True)
        shutil.copy(config, models / name / "config.json")
        for file in files:
            (models / name / file).write_bytes(b"onnx")
    scan = scan_models_dir(models)
    picked = {e.key: e.model_path.name for e in scan.entries}
    assert picked == {"ours": "model.onnx", "upstream": "nyaru_SoVits.onnx"}
    assert all(e.onnx_only and "ONNX file" in e.label for e in scan.entries)
    assert scan.problems == ("unclear: several ONNX files in unclear/ (a.onnx, b.onnx): keep the synthesizer export "
                             "only, named <name>_SoVits.onnx or model.onnx",)


def test_empty_models_dir_says_what_to_load(tmp_path):
    library = ModelLibrary(tmp_path / "missing", tmp_path / "uploads")
    notice = models_notice(library)
    assert "No voice model found" in notice and "G_*.pth" in notice and "config.json" in notice
    assert "so-vits-svc" in notice and "Hugging Face" in notice and "pretrain" in notice


def test_f0_menu_offers_only_usable_predictors(web_voice):
    choices, note = f0_choices()
    values = [v for _, v in choices]
    assert values[0] == "auto" and "pm" in values and "fcpe" in values
    assert "rmvpe" not in values and "rmvpe" in note and "rmvpe.pt" in note  # no rmvpe.pt in the test pretrain


# ------------------------------------------------------------------ uploads
def _voice_files(web_voice) -> list[Path]:
    folder = web_voice.models_dir / "demo-voice"
    return [folder / "G_0.pth", folder / "config.json"]


def test_upload_is_checked_and_private_to_its_browser(web_voice, tmp_path):
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads", UploadBudget(max_count=2))
    entry = library.add_upload(_voice_files(web_voice), owner="browser-a")
    assert entry.key.startswith("upload-") and entry.uploaded and entry.speakers == ("alto", "tenor", "bass")
    assert library.get(entry.key) == entry
    assert entry.key not in [k for _, k in library.choices()]  # anonymous visitors do not see it
    assert entry.key not in [k for _, k in library.choices("browser-b")]  # nor do other browsers
    assert entry.key in [k for _, k in library.choices("browser-a")]
    assert entry.key in [k for _, k in library.choices([entry.key])]  # a per-session list of keys still works
    keys = [library.add_upload(_voice_files(web_voice), owner="browser-a").key for _ in range(2)]
    with pytest.raises(ModelError):  # bounded: the oldest upload is gone, files included
        library.get(entry.key)
    assert not (tmp_path / "uploads" / entry.key).exists() and all(library.get(k) for k in keys)


@pytest.mark.parametrize("names, message", [
    (["G_0.pth"], "config.json"),
    (["config.json"], "exactly one generator"),
    (["G_0.pth", "config.json", "notes.txt"], "is not a model file"),
])
def test_upload_needs_the_right_files(web_voice, tmp_path, names, message):
    src = {p.name: p for p in _voice_files(web_voice)}
    files = []
    for name in names:
        path = tmp_path / name
        if name in src:
            shutil.copy(src[name], path)
        else:
            path.write_text("x")
        files.append(path)
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads")
    with pytest.raises(SvcError, match=message):
        library.add_upload(files)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_upload_with_code_in_it_is_refused_and_nothing_runs(web_voice, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.makedirs, (str(marker),)

    checkpoint = torch.load(web_voice.models_dir / "demo-voice" / "G_0.pth", weights_only=True)
    checkpoint["optimizer"] = {"hook": Exploit()}
    bad = tmp_path / "G_1.pth"
    torch.save(checkpoint, bad)
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads")
    with pytest.raises(UnsafeFileError, match="could run code"):
        library.add_upload([bad, web_voice.models_dir / "demo-voice" / "config.json"])
    assert not marker.exists()
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_voice_folder_may_carry_its_own_encoder(tmp_path, monkeypatch):
    """A voice folder that ships its encoder file (as the starter voices do) needs nothing in ./pretrain."""
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint
    from svc_core.ui.models import scan_models_dir
    from svc_core.ui.voice_cache import VoiceCache

    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models" / "bundled"
    make_upstream_checkpoint(folder, speech_encoder="vec256l9", seed=2)
    make_contentvec_checkpoint(folder / "checkpoint_best_legacy_500.pt", final_dim=256, seed=2)
    entry = next(e for e in scan_models_dir(tmp_path / "models").entries if e.key == "bundled")
    voice, cached = VoiceCache().get(entry)
    assert not cached and voice.svc.encoder.dim == 256


def test_onnx_backend_encoder_export_and_fallback(tmp_path, monkeypatch, caplog):
    """The ONNX backend runs the voice's content encoder exported to ONNX (same features as torch within 1e-4); an
    encoder that cannot be exported falls back to torch with a logged warning; a missing weights file is an error."""
    import numpy as np
    import torch

    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint
    from svc_core.errors import MissingWeightsError
    from svc_core.ui import backends
    from svc_core.ui.models import scan_models_dir
    from svc_core.ui.voice_cache import VoiceCache

    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models" / "bundled"
    make_upstream_checkpoint(folder, speech_encoder="vec256l9", seed=2)
    weights = make_contentvec_checkpoint(folder / "checkpoint_best_legacy_500.pt", final_dim=256, seed=2)
    entry = next(e for e in scan_models_dir(tmp_path / "models").entries if e.key == "bundled")
    cache = VoiceCache(export_dir=tmp_path / "exports")
    onnx_voice, _ = cache.get(entry, backends.ONNX)
    torch_voice, _ = cache.get(entry, backends.TORCH)
    assert onnx_voice.svc.encoder.session_info is not None and "encoder on ONNX Runtime" in backends.describe(
        onnx_voice.svc)
    wav = torch.from_numpy(np.sin(np.arange(16000, dtype=np.float32) * 0.05))[None]
    a = onnx_voice.svc.encoder.encode(wav).numpy()
    b = torch_voice.svc.encoder.encode(wav).numpy()
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    assert len(list((tmp_path / "exports").glob("encoder-vec256l9-*.onnx"))) == 1

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(backends, "onnx_encoder_for", broken)
    fresh = VoiceCache(export_dir=tmp_path / "exports2")
    with caplog.at_level("WARNING"):
        voice, _ = fresh.get(entry, backends.ONNX)
    assert getattr(voice.svc.encoder, "session_info", None) is None and "runs in torch" in caplog.text
    assert "encoder in torch" in backends.describe(voice.svc)

    def missing(*args, **kwargs):
        raise MissingWeightsError("The encoder", weights.name, "Put it in ./pretrain.")

    monkeypatch.setattr(backends, "onnx_encoder_for", missing)
    with pytest.raises(MissingWeightsError):
        VoiceCache(export_dir=tmp_path / "exports3").get(entry, backends.ONNX)


def test_shipped_voices_come_first_and_are_the_default(web_voice, tmp_path):
    """A shipped voice folder (the starter voices) is listed before --models-dir voices, so the page selects it."""
    import shutil

    from svc_core.ui.settings import STARTER_SOVITS, STARTER_VOICES, parse_args

    shipped = tmp_path / "voices" / "starter"
    shutil.copytree(web_voice.models_dir / "demo-voice", shipped)
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads", shipped=[shipped])
    keys = [e.key for e in library.folder_entries()]
    assert keys[0] == "starter" and "demo-voice" in keys
    assert parse_args([]).shipped_voices == (STARTER_VOICES, STARTER_SOVITS)
    assert parse_args(["--no-starter-voices"]).shipped_voices == ()


def test_onnx_voice_folder_with_a_moevoicestudio_descriptor(tmp_path):
    """models/<name>.json (MoeVoiceStudio's descriptor) stands in for config.json for an ONNX voice, not a G_*.pth."""
    import json

    models = tmp_path / "models"
    descriptor = {"Folder": "moe", "Name": "moe", "Type": "SoVits", "Rate": 44100, "Hop": 512,
                  "Hubert": "vec-768-layer-12", "SoVits4": True, "SoVits3": False, "CharaMix": True, "Volume": False,
                  "HiddenSize": 768, "Characters": ["aoi", "rin"], "Cluster": ""}
    for name, model_file in (("moe", "moe_SoVits.onnx"), ("pth", "G_100.pth")):
        (models / name).mkdir(parents=True)
        (models / name / model_file).write_bytes(b"weights")
        (models / f"{name}.json").write_text(json.dumps(dict(descriptor, Folder=name, Name=name)))
    scan = scan_models_dir(models)
    assert [(e.key, e.config_path.name, e.speakers, e.speech_encoder) for e in scan.entries] == [
        ("moe", "moe.json", ("aoi", "rin"), "vec768l12")]
    assert scan.problems == ("pth: no config.json in pth/ (a MoeVoiceStudio descriptor describes ONNX files only)",)


# ------------------------------------------------------------------ ONNX uploads
@pytest.fixture(scope="module")
def onnx_voice_files(web_voice, tmp_path_factory):
    """demo-voice as upstream leaves it: nyaru_SoVits.onnx, its config.json, a MoeVoiceStudio descriptor and the
    content encoder as vec-256-layer-9.onnx (our exports rewired to upstream's layouts)."""
    import json

    from svc_core.onnx import export_encoder, export_synthesizer
    from upstream_onnx_factories import as_upstream_encoder, as_upstream_synthesizer

    root = tmp_path_factory.mktemp("onnx-upload")
    source = web_voice.models_dir / "demo-voice"
    manifest = export_synthesizer(source / "G_0.pth", source / "config.json", root / "ours" / "model.onnx",
                                  split=False)
    model = as_upstream_synthesizer(root / "ours" / "model.onnx", source / "config.json", root / "nyaru")
    export_encoder("vec256l9", None, root / "ours" / "vec256l9.onnx")
    encoder = as_upstream_encoder(root / "ours" / "vec256l9.onnx", root / "vec-256-layer-9.onnx")
    descriptor = root / "nyaru.json"  # HiddenSize / Hubert from ssl_dim: the test model's gin_channels is 32
    descriptor.write_text(json.dumps(dict(manifest["moevoicestudio"], HiddenSize=256, Hubert="vec-256-layer-9")))
    return {"model": model, "config": model.with_name("config.json"), "descriptor": descriptor, "encoder": encoder}


def test_onnx_upload_with_descriptor_and_encoder_converts(web_voice, onnx_voice_files, tmp_path):
    import numpy as np

    from audio_factories import sung_phrase
    from svc_core.ui.voice_cache import VoiceCache

    files = onnx_voice_files
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads")
    entry = library.add_upload([files["model"], files["descriptor"], files["encoder"]])
    assert entry.onnx_only and entry.uploaded and entry.speakers == ("alto", "tenor", "bass")
    assert sorted(p.name for p in entry.model_path.parent.iterdir()) == [
        "config.json", "manifest.json", "nyaru_SoVits.onnx", "vec-256-layer-9.onnx"]
    voice, _ = VoiceCache(export_dir=tmp_path / "exports").get(entry, "torch")
    assert voice.backend == "onnx" and voice.svc.encoder.manifest["file"] == "vec-256-layer-9.onnx"
    out = voice.svc.slice_inference(sung_phrase(1.5), 44100, "tenor", f0_predictor="pm")
    assert out.shape == (int(1.5 * 44100),) and np.abs(out).max() > 1e-3


def test_onnx_uploads_that_are_refused(web_voice, onnx_voice_files, tmp_path):
    """External-data weights (paths to other files), custom operators, a config that does not match, an encoder
    of another width: refused with a message, nothing kept."""
    import onnx
    from onnx import helper

    files = onnx_voice_files
    uploads = tmp_path / "uploads"
    library = ModelLibrary(web_voice.models_dir, uploads)
    proto = onnx.load(str(files["model"]))
    external = tmp_path / "ext" / "nyaru_SoVits.onnx"
    external.parent.mkdir()
    onnx.save_model(proto, str(external), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    pointing = onnx.load(str(external), load_external_data=False)  # now aim the weights at a file of the server
    for tensor in pointing.graph.initializer:
        for entry in tensor.external_data:
            entry.value = "/etc/hostname" if entry.key == "location" else entry.value
    external.write_bytes(pointing.SerializeToString())
    proto = onnx.load(str(files["model"]))
    with pytest.raises(ModelError, match="keeps weights in other files"):
        library.add_upload([external, files["config"]])
    proto.graph.node.append(helper.make_node("Steal", ["audio"], ["loot"], domain="evil.ops"))
    custom = tmp_path / "custom" / "nyaru_SoVits.onnx"
    custom.parent.mkdir()
    onnx.save(proto, str(custom))
    with pytest.raises(ModelError, match=r"operators outside ONNX Runtime's own sets \(evil.ops\)"):
        library.add_upload([custom, files["config"]])
    vol_config = tmp_path / "other" / "config.json"  # a 768-dim model's config
    vol_config.parent.mkdir()
    shutil.copy(web_voice.models_dir / "demo-voice" / "config.json", vol_config)
    text = vol_config.read_text().replace('"ssl_dim": 256', '"ssl_dim": 768').replace('"vec256l9"', '"vec768l12"')
    vol_config.write_text(text)
    with pytest.raises(ModelError, match="takes 256-dim content units but config.json says ssl_dim 768"):
        library.add_upload([files["model"], vol_config])
    wrong = tmp_path / "vec-768-layer-12.onnx"
    shutil.copy(files["encoder"], wrong)
    with pytest.raises(ModelError, match="gives 256-dim features, but its name says vec768l12"):
        library.add_upload([files["model"], files["config"], wrong])
    assert not uploads.exists() or not any(uploads.iterdir())
