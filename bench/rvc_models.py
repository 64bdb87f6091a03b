"""Full-size random-weight files in RVC's layout for the RVC bench (built once, reused from --workdir).

- the voice: RVC WebUI's small-model file (`savee` layout, fp16 weights) of a v2 40k pitch model at RVC's real
  widths (tests/rvc_factories.py make_rvc_model(size="full"));
- the content encoder: ContentVec / HuBERT base at its real size (768 wide, 12 layers, 3072 FFN, 12 heads) in the
  fairseq layout, named as RVC names it (assets/hubert/hubert_base.pt) - the same builder as bench/models.py;
- RMVPE at its real size (E2E0, random weights) as RVC stores it: a bare state dict;
- a retrieval index in RVC's layout: faiss "IVF{n},Flat", nprobe 1, named added_IVF{n}_Flat_nprobe_1_<exp>_v2.index,
  built as RVC's train_index does (svc_core.retrieval.faiss_index.build_faiss_index) from INDEX_ROWS 768-d rows.

These files go through the loaders users' files go through (svc_core.rvc.checkpoint, svc_core.encoders,
svc_core.f0.rmvpe, svc_core.retrieval).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from .models import FULL_CONV  # noqa: E402 - the ContentVec conv stack at its real size

RVC_VERSION, RVC_RATE = "v2", "40k"  # the bench model
INDEX_ROWS = 30_000  # feature frames in the index: 10 minutes of training audio at 50 frames/s
CONTENT_DIMS = {"v2": 768, "v1": 256}  # v2: HuBERT layer 12; v1: final_proj of layer 9
INDEX_EXPERIMENT = "bench"  # the <exp> part of RVC's index file name
SEEDS = {"voice": 11, "encoder": 12, "rmvpe": 13, "index": 14}


def build_rvc(workdir: str | os.PathLike, index_rows: int = INDEX_ROWS, size: str = "full",
              version: str = RVC_VERSION) -> dict[str, Path]:
    """{voice, encoder, rmvpe, index} under workdir/rvc (created when missing). size "small" with version "v1"
    (tests) builds the parity models' small widths and the small test encoder (64 wide, final_proj 256)."""
    import numpy as np
    import torch

    from encoder_factories import make_contentvec_checkpoint
    from rvc_factories import make_rvc_model

    if size == "small" and version != "v1":
        raise ValueError("the small build is v1 (the small test encoder's final_proj gives 256-d features)")
    root = Path(workdir) / ("rvc" if size == "full" else f"rvc-{size}-{version}")
    root.mkdir(parents=True, exist_ok=True)
    voice = root / f"bench_{version}_{RVC_RATE}.pth"
    if not voice.is_file():
        make_rvc_model(voice, version=version, sr=RVC_RATE, f0=True, size=size, seed=SEEDS["voice"])
    encoder = root / "assets" / "hubert" / "hubert_base.pt"
    if not encoder.is_file():
        encoder.parent.mkdir(parents=True, exist_ok=True)
        sizes = (dict(embed_dim=768, final_dim=256, layers=12, heads=12, ffn_dim=3072,
                      conv_feature_layers=FULL_CONV) if size == "full" else {})
        make_contentvec_checkpoint(encoder, seed=SEEDS["encoder"], **sizes)
    rmvpe = root / "assets" / "rmvpe" / "rmvpe.pt"
    if not rmvpe.is_file():  # RVC stores RMVPE as a bare state dict
        from svc_core.f0.rmvpe_model import E2E0

        rmvpe.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(SEEDS["rmvpe"])
        torch.save(E2E0().state_dict(), rmvpe)
    index = _find_index(root, version)
    if index is None:
        import faiss

        from svc_core.retrieval.faiss_index import build_faiss_index

        rng = np.random.default_rng(SEEDS["index"])
        rows = rng.standard_normal((index_rows, CONTENT_DIMS[version])).astype(np.float32)
        built = build_faiss_index(rows, seed=SEEDS["index"], n_cpu=1)
        n_ivf = faiss.extract_index_ivf(built).nlist
        index = root / f"added_IVF{n_ivf}_Flat_nprobe_1_{INDEX_EXPERIMENT}_{version}.index"
        partial = index.with_suffix(".part")
        faiss.write_index(built, str(partial))
        partial.replace(index)
    return {"voice": voice, "encoder": encoder, "rmvpe": rmvpe, "index": index}


def _find_index(root: Path, version: str) -> Path | None:
    """The built index in root (its name carries n_ivf, known only once built), or None."""
    found = sorted(root.glob(f"added_IVF*_Flat_nprobe_1_{INDEX_EXPERIMENT}_{version}.index"))
    return found[0] if found else None
