"""RVC voices exported to ONNX (svc_core/onnx/rvc_export.py) and run on ONNX Runtime (rvc_runtime.py) give the
torch RvcVoice's audio for the same draws (float32, TOLERANCE), through the split pair (one shot and in chunks),
the RVC-layout file alone, and a manifest-less file in RVC's layout (hparams probed)."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from rvc_factories import make_rvc_model
from svc_core.errors import ModelError, OptionError
from svc_core.noise import RecordedNoise, TorchNoise

TOLERANCE = 1e-4  # max abs difference of float32 audio in [-1, 1] (op order only; measured ~1e-7)
FRAMES = 57  # not a multiple of the chunk sizes below
RVC_INPUTS = ["phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"]
VARIANTS = {  # name: (make_rvc_model keywords, export keywords)
    "v2": (dict(version="v2", f0=True, speakers=2, seed=21), dict(verify=True)),
    "v1": (dict(version="v1", f0=True, seed=22), dict(verify=False, split=False)),
    "nono": (dict(version="v2", f0=False, seed=23), dict(verify=True)),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, tuple[Path, Path, dict]]:
    """name -> (the .pth, its export, the export's manifest)."""
    from svc_core.onnx.rvc_export import export_rvc

    root = tmp_path_factory.mktemp("rvc_onnx")
    out = {}
    for name, (model_kw, export_kw) in VARIANTS.items():
        pth = make_rvc_model(root / name / f"{name}.pth", **model_kw)
        target = root / name / f"{name}.onnx"
        out[name] = (pth, target, export_rvc(pth, target, **export_kw))
    return out


@pytest.fixture(scope="module")
def torch_voices(exports):
    from svc_core.rvc.voice import load_rvc_voice

    return {name: load_rvc_voice(pth) for name, (pth, _, _) in exports.items()}


def inputs(voice, frames: int = FRAMES, seed: int = 0):
    """phone [1, T, C], pitch [1, T] long, nsff0 [1, T] Hz (None, None for no-pitch voices)."""
    gen = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, frames, voice.hparams.content_dim, generator=gen)
    if not voice.has_f0:
        return phone, None, None
    t = torch.arange(frames, dtype=torch.float32)
    f0 = 180.0 * 2 ** (0.7 * torch.sin(2 * torch.pi * t / 23))
    f0[frames // 3: frames // 3 + 6] = 0.0
    mel = 1127 * torch.log1p(f0 / 700)
    lo, hi = 1127 * np.log1p(50 / 700), 1127 * np.log1p(1100 / 700)
    pitch = torch.where(mel > 0, (mel - lo) * 254 / (hi - lo) + 1, torch.ones_like(mel)).clamp(1, 255).round()
    return phone, pitch.long()[None], f0[None]


def draws(voice, frames: int = FRAMES, seed: int = 1, zero: bool = False) -> list[np.ndarray]:
    """The torch voice's draws in its order: prior randn, then (pitch voices) phase rand and NSF randn."""
    gen = np.random.default_rng(seed)
    shapes = [(1, voice.hparams.inter_channels, frames)]
    if voice.has_f0:
        shapes += [(1, 1, 1), (1, frames * voice.hparams.hop_length, 1)]
    out = [gen.standard_normal(s).astype(np.float32) for s in shapes]
    if voice.has_f0:
        out[1] = gen.random((1, 1, 1)).astype(np.float32)
    return [np.zeros_like(x) for x in out] if zero else out


def both(torch_voice, onnx_voice, speaker, noise_draws, **kw) -> tuple[np.ndarray, np.ndarray]:
    args = inputs(torch_voice)
    with torch.inference_mode():
        ref = torch_voice.synthesize(*args, speaker, RecordedNoise(noise_draws), **kw)
    noise = RecordedNoise(noise_draws)
    got = onnx_voice.synthesize(*args, speaker, noise, **kw)
    assert noise.exhausted, "the ONNX voice must draw exactly what the torch voice draws"
    return np.asarray(ref, dtype=np.float32), got


# ---------------------------------------------------------------------------------------------- the export
def test_export_has_rvcs_interface(exports):
    from svc_core.onnx.runtime import make_session

    _, path, manifest = exports["v2"]
    session, _ = make_session(path, "cpu", threads=1)
    assert [i.name for i in session.get_inputs()] == RVC_INPUTS
    assert [o.name for o in session.get_outputs()] == ["audio"]
    types = {i.name: i.type for i in session.get_inputs()}
    assert types["phone"] == "tensor(float)" and types["pitch"] == types["ds"] == "tensor(int64)"
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("RandomNormalLike") == 1  # the NSF noise, drawn in the graph as in RVC's export
    assert manifest["kind"] == "rvc-synthesizer" and manifest["sample_rate"] == 40000
    assert manifest["parity"]["max_abs_diff"] < TOLERANCE
    assert manifest["split"]["parity"]["max_abs_diff"] < TOLERANCE
    assert (path.parent / "v2.prior.onnx").is_file() and (path.parent / "v2.dec.onnx").is_file()

    _, nono, manifest = exports["nono"]
    graph = onnx.load(nono).graph
    assert [i.name for i in graph.input if i.name in RVC_INPUTS] == ["phone", "phone_lengths", "ds", "rnd"]
    assert not [n for n in graph.node if n.op_type.startswith("Random")]


# --------------------------------------------------------------------------------------- ORT == torch
@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("zero", [False, True], ids=["recorded", "zero"])
def test_onnx_voice_equals_torch_voice(exports, torch_voices, name, zero):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    voice = RvcOnnxVoice(exports[name][1], device="cpu", threads=1)
    tv = torch_voices[name]
    assert voice.family == "rvc" and voice.has_f0 == tv.has_f0 and voice.hparams == tv.hparams
    assert voice.config.sampling_rate == tv.config.sampling_rate and voice.n_speakers == tv.n_speakers
    assert voice.config.spk == tv.config.spk and voice.config.speech_encoder == tv.config.speech_encoder
    assert (voice.split is not None) == (name != "v1")
    noise = draws(tv, zero=zero)
    ref, got = both(tv, voice, torch.tensor([0]), noise)
    assert got.dtype == np.float32 and got.shape == ref.shape == (FRAMES * tv.hparams.hop_length,)
    assert np.abs(got - ref).max() < TOLERANCE
    if voice.split is not None:  # chunked decoding: same samples
        _, chunked = both(tv, voice, torch.tensor([0]), noise, chunk_frames=16)
        assert np.abs(chunked - ref).max() < TOLERANCE


def test_speaker_mix_span_and_seeded_noise(exports, torch_voices):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    voice, tv = RvcOnnxVoice(exports["v2"][1], threads=1), torch_voices["v2"]
    mix = torch.tensor([0.3, 0.7])
    ref, got = both(tv, voice, mix, draws(tv))
    assert np.abs(got - ref).max() < TOLERANCE
    hop = tv.hparams.hop_length
    full = voice.synthesize(*inputs(tv), torch.tensor([1]), RecordedNoise(draws(tv)))
    part = voice.synthesize(*inputs(tv), torch.tensor([1]), RecordedNoise(draws(tv)), chunk_frames=8, span=(10, 40))
    assert np.abs(part - full[10 * hop: 40 * hop]).max() < TOLERANCE
    with torch.inference_mode():
        ref = tv.synthesize(*inputs(tv), torch.tensor([1]), TorchNoise.seeded(5))
    got = voice.synthesize(*inputs(tv), torch.tensor([1]), TorchNoise.seeded(5))
    assert np.abs(got - np.asarray(ref)).max() < TOLERANCE


def test_rvc_layout_file_alone(exports, torch_voices, tmp_path):
    """Our RVC-layout file without its split pair: one call per input, in-graph noise fed as an input."""
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    _, path, _ = exports["v2"]
    shutil.copy(path, tmp_path / path.name)
    shutil.copy(str(path) + ".json", tmp_path / (path.name + ".json"))
    voice, tv = RvcOnnxVoice(tmp_path / path.name, threads=1), torch_voices["v2"]
    assert voice.split is None
    ref, got = both(tv, voice, torch.tensor([1]), draws(tv))
    assert np.abs(got - ref).max() < TOLERANCE
    with pytest.raises(OptionError, match="one speaker id"):
        voice.synthesize(*inputs(tv), torch.tensor([0.5, 0.5]), RecordedNoise(draws(tv)))


def test_short_inputs(exports, torch_voices):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    voice, tv = RvcOnnxVoice(exports["v2"][1], threads=1), torch_voices["v2"]
    for frames in (3, 11):
        args, noise = inputs(tv, frames), draws(tv, frames)
        with torch.inference_mode():
            ref = np.asarray(tv.synthesize(*args, torch.tensor([0]), RecordedNoise(noise)))
        got = voice.synthesize(*args, torch.tensor([0]), RecordedNoise(noise))
        assert np.abs(got - ref).max() < TOLERANCE, frames


# ----------------------------------------------------------------------- a file in RVC's exporter layout
def _rvc_style_export(net, hp, path: Path) -> None:
    """What RVC's exporter writes (rvc_layout.py's table): opset 18, no constant folding, no manifest, and the
    initial-phase draw in the graph too (RandomUniform [1, 1, 1], zeroed)."""
    from svc_core.onnx.rvc_export import dummy_inputs
    from svc_core.onnx.rvc_graph import RvcGraph

    class RvcStyle(RvcGraph):
        def decode(self, z, g, f0=None, noise=None, phase0=None):
            phase = torch.rand(1, 1, 1) * 0.0  # harmonic_num 0: RVC zeroes its only column
            return super().decode(z, g, f0, noise, phase.reshape(1))

    x = dummy_inputs(hp, int(net.emb_g.weight.shape[0]), frames=40)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(RvcStyle(net).eval(), tuple(x[n] for n in RVC_INPUTS), str(path), dynamo=False,
                          opset_version=18, input_names=RVC_INPUTS, output_names=["audio"],
                          dynamic_axes={"phone": [1], "pitch": [1], "pitchf": [1], "rnd": [2]},
                          do_constant_folding=False)


def test_manifestless_rvc_layout_file_is_probed(torch_voices, tmp_path):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice, is_rvc_onnx

    tv = torch_voices["v2"]
    path = tmp_path / "voice.onnx"
    _rvc_style_export(tv.net, tv.hparams, path)
    assert is_rvc_onnx(path)
    voice = RvcOnnxVoice(path, threads=1)
    assert voice.manifest is None and voice.split is None
    assert voice.meta["random_nodes"] == ["RandomUniform", "RandomNormalLike"]
    probed = voice.meta["probed"]
    assert (probed["content_dim"], probed["f0"], probed["hop"], probed["sample_rate"]) == (768, True, 400, 40000)
    assert (probed["speakers"], probed["inter_channels"]) == (2, tv.hparams.inter_channels)
    assert voice.n_speakers == 2 and voice.config.sampling_rate == 40000 and voice.config.spk == {"0": 0}
    ref, got = both(tv, voice, torch.tensor([1]), draws(tv))
    assert np.abs(got - ref).max() < TOLERANCE


# ------------------------------------------------------------------------------------------- refusals
def _tiny(path: Path, inputs: dict[str, tuple[int, list]], randoms: int = 0) -> Path:
    """An ONNX file with the given inputs (name -> (element type, dims)), output 'audio' = the first input, and
    `randoms` RandomNormalLike nodes."""
    from onnx import TensorProto, helper

    names = list(inputs)
    nodes = [helper.make_node("Identity", [names[0]], ["audio"])]
    nodes += [helper.make_node("RandomNormalLike", [names[0]], [f"r{k}"]) for k in range(randoms)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, d) for n, (t, d) in inputs.items()],
                              [helper.make_tensor_value_info("audio", inputs[names[0]][0], None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


F, I = 1, 7  # onnx.TensorProto.FLOAT, INT64
RVC_SIG = {"phone": (F, [1, "T", 768]), "phone_lengths": (I, [1]), "pitch": (I, [1, "T"]), "pitchf": (F, [1, "T"]),
           "ds": (I, [1]), "rnd": (F, [1, 192, "T"])}


@pytest.mark.parametrize("case, expected", [
    ({"c": (F, [1, "T", 768]), "f0": (F, [1, "T"]), "mel2ph": (I, [1, "T"]), "uv": (F, [1, "T"]),
      "noise": (F, [1, 192, "T"]), "sid": (I, [1])}, "so-vits-svc synthesizer export.*OnnxSvc"),
    ({"x": (F, [1, "N"])}, "does not have RVC's ONNX interface.*inputs x"),
    ({k: v for k, v in RVC_SIG.items() if k != "pitchf"}, "does not have RVC's ONNX interface"),
    ({**RVC_SIG, "phone": (F, [1, "T", 512])}, "768\\] \\(v2\\) or \\[1, T, 256\\]"),
    ({**RVC_SIG, "phone": (10, [1, "T", 768])}, "float16 export is not supported"),
    ({**RVC_SIG, "extra": (F, [1])}, "inputs RVC's interface does not know \\(extra\\)"),
])
def test_odd_onnx_files_are_refused(tmp_path, case, expected):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    path = _tiny(tmp_path / "odd.onnx", case)
    with pytest.raises(ModelError, match=expected):
        RvcOnnxVoice(path)


def test_more_refusals(tmp_path, exports, torch_voices):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice, is_rvc_onnx

    with pytest.raises(ModelError, match="draws random numbers in 2 places"):
        RvcOnnxVoice(_tiny(tmp_path / "two.onnx", RVC_SIG, randoms=2))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x12\x34not a protobuf at all" * 10)
    with pytest.raises(ModelError):
        RvcOnnxVoice(junk)
    assert not is_rvc_onnx(junk) and not is_rvc_onnx(_tiny(tmp_path / "x.onnx", {"x": (F, [1])}))
    sidecar = _tiny(tmp_path / "m.onnx", RVC_SIG)
    for text, expected in (("{", "not readable JSON"), ('{"kind": "synthesizer"}', "not of an RVC voice.*OnnxSvc"),
                           ('{"kind": "rvc-synthesizer", "version": "v2"}', "incomplete or damaged")):
        Path(str(sidecar) + ".json").write_text(text)
        with pytest.raises(ModelError, match=expected):
            RvcOnnxVoice(sidecar)
    voice, tv = RvcOnnxVoice(exports["v2"][1], threads=1), torch_voices["v2"]
    phone, pitch, f0 = inputs(tv)
    with pytest.raises(OptionError, match="phone must be"):
        voice.synthesize(phone[..., :256], pitch, f0, torch.tensor([0]), TorchNoise.seeded(0))
    with pytest.raises(OptionError, match="outside this voice"):
        voice.synthesize(phone, pitch, f0, torch.tensor([2]), TorchNoise.seeded(0))
    with pytest.raises(OptionError, match="pitch model"):
        voice.synthesize(phone, None, None, torch.tensor([0]), TorchNoise.seeded(0))
    with pytest.raises(OptionError, match="torch-backend option"):
        voice.synthesize(phone, pitch, f0, torch.tensor([0]), TorchNoise.seeded(0), vocoder_dtype=torch.bfloat16)


def test_cli_exports_an_rvc_pth(exports, tmp_path, capsys):
    from svc_core.cli import main

    pth = exports["v1"][0]
    out = tmp_path / "cli.onnx"
    assert main(["export-onnx", "-m", str(pth), "-o", str(out), "--no-split", "--no-verify"]) == 0
    printed = capsys.readouterr().out
    assert "RVC v1 pitch voice, 40000 Hz, hop 400" in printed and out.is_file()
    assert [i.name for i in onnx.load(out).graph.input] == RVC_INPUTS


def test_family_table_loads_rvc_exports(exports, torch_voices, tmp_path):
    from svc_core.families import identify, load_model
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    path = exports["nono"][1]
    assert identify(path).name == "rvc-onnx"
    voice = load_model(path, None, "cpu")
    assert isinstance(voice, RvcOnnxVoice) and voice.family == "rvc" and not voice.has_f0
    plain = tmp_path / "voice.onnx"
    _rvc_style_export(torch_voices["v2"].net, torch_voices["v2"].hparams, plain)
    assert identify(plain).name == "rvc-onnx"
