"""Files written by RVC's own exporter run on RvcOnnxVoice and give RVC's numbers.

RVC's ONNX classes (infer/lib/infer_pack/models_onnx.py at the fixtures' commit d60cd3d009b7) are taken from the
RVC mirror with `git archive` and called in a child process with RVC's export arguments (input/output names,
dynamic axes, opset 18, no constant folding; RVC's export.py only also runs onnxsim, which only simplifies). The
parity fixtures' models are exported that way, run here with the recorded draws of the infer fixtures, and
compared with the audio RVC's torch code made (parity README section 4). Skipped without the mirror or ../shared.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core.noise import RecordedNoise

RVC_MIRROR = Path(os.environ.get("SVC_RVC_MIRROR",
                                  "/work/.mirror/RVC-Project+Retrieval-based-Voice-Conversion-WebUI/repo"))
RVC_COMMIT = "d60cd3d009b7"
TOLERANCE = 1e-4  # float32, op order (README section 7); measured 5e-7

# Calls RVC's class with the arguments of RVC's infer/modules/onnx/export.py; rnd is inter_channels wide (RVC's
# script hard-codes 192, the width of its real models; the fixtures' small models have 32).
DRIVER = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from infer.lib.infer_pack.models_onnx import SynthesizerTrnMsNSFsidM
cpt = torch.load(sys.argv[2], map_location="cpu", weights_only=True)
cpt["config"][-3] = cpt["weight"]["emb_g.weight"].shape[0]
width = 256 if cpt.get("version", "v1") == "v1" else 768
net = SynthesizerTrnMsNSFsidM(*cpt["config"], is_half=False, version=cpt.get("version", "v1"))
net.load_state_dict(cpt["weight"], strict=False)
net = net.float().eval()
frames = 200
args = (torch.rand(1, frames, width), torch.tensor([frames]).long(), torch.randint(size=(1, frames), low=5, high=255),
        torch.rand(1, frames), torch.LongTensor([0]), torch.rand(1, cpt["config"][2], frames))
torch.onnx.export(net, args, sys.argv[3], dynamic_axes={"phone": [1], "pitch": [1], "pitchf": [1], "rnd": [2]},
                  do_constant_folding=False, opset_version=18, verbose=False, dynamo=False,
                  input_names=["phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"], output_names=["audio"])
"""


@pytest.fixture(scope="module")
def rvc_exports(tmp_path_factory, parity_dir) -> dict[str, Path]:
    """{"v2": file, "v1": file}: the fixture models exported by RVC's code."""
    if not (RVC_MIRROR / "HEAD").is_file():
        pytest.skip(f"RVC mirror not found at {RVC_MIRROR} (set SVC_RVC_MIRROR)")
    root = tmp_path_factory.mktemp("rvc_upstream")
    tar = subprocess.run(["git", f"--git-dir={RVC_MIRROR}", "archive", "--format=tar", RVC_COMMIT, "infer/lib/infer_pack"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(root / "src", filter="data")
    out = {}
    for version in ("v2", "v1"):
        target = root / f"rvc_small_{version}_40k_f0.onnx"
        subprocess.run([sys.executable, "-c", DRIVER, str(root / "src"),
                        str(parity_dir / "rvc" / "models" / f"rvc_small_{version}_40k_f0.pth"), str(target)],
                       check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        out[version] = target
    return out


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_rvc_exported_file_gives_rvcs_audio(rvc_exports, parity_dir, version):
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    voice = RvcOnnxVoice(rvc_exports[version], device="cpu", threads=1)
    assert voice.family == "rvc" and voice.has_f0 and voice.manifest is None
    hp = voice.hparams
    assert (hp.version, hp.sr, hp.hop_length, hp.inter_channels, hp.gin_channels) == (version, 40000, 400, 32, 32)
    assert voice.n_speakers == 4 and voice.config.sampling_rate == 40000
    assert voice.meta["random_nodes"] == ["RandomUniform", "RandomNormalLike"]

    d = np.load(parity_dir / "rvc" / f"infer_{version}_40k_f0.npz")
    args = (torch.from_numpy(d["in_phone"]), torch.from_numpy(d["in_pitch"]), torch.from_numpy(d["in_nsff0"]),
            torch.from_numpy(d["in_sid"]))
    for prefix in ("rec", "zero"):
        draws = [d[f"rec_noise{k}_{fn}"] for k, fn in enumerate(("randn_like", "rand", "randn_like"))]
        if prefix == "zero":
            draws = [np.zeros_like(x) for x in draws]
        noise = RecordedNoise(draws)
        audio = voice.synthesize(*args, noise)
        assert noise.exhausted
        ref = d[f"{prefix}_o"].reshape(-1)
        assert audio.shape == ref.shape
        assert np.abs(audio - ref).max() < TOLERANCE, prefix
