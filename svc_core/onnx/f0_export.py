"""RMVPE's network to ONNX, and the ONNX Runtime stand-in the RMVPE predictor uses for `.onnx` weights.

    manifest = export_rmvpe("pretrain/rmvpe.pt", "pretrain/rmvpe.onnx")
    get_predictor("rmvpe", weights_path="pretrain/rmvpe.onnx")     # same predictor, network on ONNX Runtime

Graph: `mel` float32 [1, 128, T] (log-mel at 100 frames/s, T a multiple of 32; dynamic T) -> `salience`
float32 [1, T, 360]. Resampling, the mel front end and the salience decoding stay in the predictor (cheap), so
both backends share them. The manifest (sidecar `<file>.json` and ONNX metadata) records the source weights'
sha256 and the export check: ONNX Runtime vs torch salience at two untraced lengths (fails above 1e-3).
"""
from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import ModelError
from .export import MANIFEST_FORMAT, OPSET, _store_manifest, read_manifest, sha256_file

TRACE_FRAMES = 128  # 1.28 s of mel frames
CHECK_FRAMES = (96, 352)  # export check lengths (multiples of 32, neither the traced one)


def export_rmvpe(weights_path: Optional[str | os.PathLike], out_path: str | os.PathLike,
                 opset: int = OPSET) -> dict[str, Any]:
    """rmvpe.pt (so-vits or RVC layout; None = search ./pretrain, $SVC_PRETRAIN_DIR) -> out_path (+ manifest)."""
    import onnx

    from ..f0.rmvpe import load_rmvpe_model
    from ..f0.rmvpe_model import N_BINS, N_MELS
    from ..f0.weights import find_weights

    model = load_rmvpe_model(weights_path)
    source = find_weights("rmvpe.pt", weights_path)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # GRU export warnings about batch_first / initial state
        torch.onnx.export(model, (torch.randn(1, N_MELS, TRACE_FRAMES, generator=gen),), os.fspath(out_path),
                          dynamo=False, opset_version=int(opset), input_names=["mel"], output_names=["salience"],
                          dynamic_axes={"mel": {2: "frames"}, "salience": {1: "frames"}}, do_constant_folding=True)
    onnx.checker.check_model(os.fspath(out_path))
    manifest = {
        "format": MANIFEST_FORMAT, "kind": "f0", "predictor": "rmvpe", "file": out_path.name,
        "source_weights": {"file": source.name, "sha256": sha256_file(source)},
        "inputs": {"mel": {"dtype": "float32", "shape": [1, N_MELS, "T"], "note": "T a multiple of 32"}},
        "outputs": {"salience": {"dtype": "float32", "shape": [1, "T", N_BINS]}},
        "opset": int(opset), "parity": _check(model, out_path),
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _store_manifest(out_path, manifest)
    return manifest


def _check(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    from ..f0.rmvpe_model import N_MELS
    from .runtime import make_session

    session, info = make_session(path, device="cpu")
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for frames in CHECK_FRAMES:
        mel = torch.randn(1, N_MELS, frames, generator=gen) * 2.0 - 4.0
        with torch.no_grad():
            ref = model(mel).numpy()
        got = session.run(["salience"], {"mel": mel.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelError(f"The exported RMVPE gives shape {got.shape} for {frames} frames, torch {ref.shape}.")
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > 1e-3:
        raise ModelError(f"The exported RMVPE does not reproduce torch (max abs salience difference {worst:.2e}).")
    return {"frames": list(CHECK_FRAMES), "max_abs_diff": worst, "provider": info.provider}


class OnnxRmvpeNetwork:
    """Callable like E2E0 (mel [1, 128, T] tensor -> salience [1, T, 360] tensor), on ONNX Runtime with
    `threads` intra-op threads (None: torch's current thread count, so one setting governs both)."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: Optional[int] = None) -> None:
        from .runtime import make_session

        manifest = read_manifest(path)
        if manifest.get("kind") != "f0" or manifest.get("predictor") != "rmvpe":
            raise ModelError(f"'{os.path.basename(os.fspath(path))}' is not an exported RMVPE network (its manifest "
                             f"says kind={manifest.get('kind')!r}); export one with `python -m svc_core export-onnx "
                             "--f0 rmvpe`.")
        self.manifest = manifest
        self.session, self.session_info = make_session(path, "cuda" if str(device).startswith("cuda") else "cpu",
                                                       threads or torch.get_num_threads())

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        out = self.session.run(["salience"], {"mel": mel.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)

    def eval(self) -> "OnnxRmvpeNetwork":
        return self
