"""`python -m bench.latent_starter --corpus DIR`: what the latent map shows for the starter voices.

The corpus is a small re-render of the starter voices' training-like clips (`python -m svc_core.starter corpus
--out DIR --sentences 40 --songs-per-sentence 1`: each of the four voices speaks and sings 40 sentences, ~7 min per
voice). Sentences T0000-T0029 are the "training" clips, T0030-T0039 held out (inputs and test split).

1. Speaker separation, per encoder (phonevec256: hidden layer; phoneppg42: posteriorgram), on non-silent frames:
   silhouette score by speaker (in the embedding, cosine; and in the 2-D UMAP map), and kNN (k=10) speaker accuracy
   of held-out frames against training frames (no sentence in both: neighbouring frames of one clip cannot help),
   in the embedding and in the 2-D map (held-out frames placed by the map's kNN placement). Chance: 25 %.
2. Retrieval ratio, per starter voice (voices/starter: WORLD + phoneppg42; voices/starter-sovits: so-vits +
   phonevec256): a k-means file (K_CLUSTERS centres per speaker, svc_core.retrieval.train_kmeans on the training
   frames), held-out clips converted from one speaker to another at cluster ratio 0, 0.5, 1 and re-encoded with the
   voice's encoder. Per ratio: share of the target speaker among the k=10 nearest training frames (all four
   speakers), mean distance to the target speaker's centroid and to the source speaker's. The input itself and the
   mixed features the synthesizer receives are given beside them.
Writes bench/last_latent_starter.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = Path(__file__).resolve().parent / "last_latent_starter.json"
TRAIN_SENTENCES = range(0, 30)
HELDOUT_SENTENCES = range(30, 40)
K_NEIGHBOURS = 10
K_CLUSTERS = 64  # k-means centres per speaker (upstream uses 10000 on hours of audio; ours is ~5 min per speaker)
SILHOUETTE_SAMPLE = 4000  # frames (seeded)
MAP_FRAMES = 20000  # frames the UMAP map is fitted on (seeded subsample of the training frames)
RATIOS = (0.0, 0.5, 1.0)
PAIRS = (("flite_slt", "flite_awb"), ("fest_ked", "flite_slt"), ("flite_awb", "flite_rms"), ("flite_rms", "fest_ked"))
INPUT_CLIPS_PER_PAIR = 3  # held-out speech clips converted per pair
VOICES = {"starter": ("voices/starter/W_5000.pth", "voices/starter/config.json"),
          "starter-sovits": ("voices/starter-sovits/G_1000.pth", "voices/starter-sovits/config.json")}


def clip_list(corpus: Path, sentences: range) -> list[tuple[str, Path]]:
    raw = corpus / "raw"
    out = []
    for voice in sorted(p.name for p in raw.iterdir() if p.is_dir()):
        for s in sentences:
            out += [(voice, p) for p in sorted((raw / voice).glob(f"T{s:04d}_*.wav"))]
    return out


def embed(labeller, clips) -> "FrameSet":
    from svc_core.audio import load_audio
    from svc_core.latent.frames import SILENCE, FrameSet

    sets = []
    for voice, path in clips:
        wav, sr = load_audio(str(path))
        f = labeller.embed(wav, sr, voice, "training", f"{voice}/{path.name}")
        sets.append(f.take(f.phone != SILENCE))
    return FrameSet.concat(sets)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = K_NEIGHBOURS) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return 100.0 * float(KNeighborsClassifier(n_neighbors=k).fit(train_x, train_y).score(test_x, test_y))


def silhouette(x, y, metric: str, seed: int = 0) -> float:
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(x, y, metric=metric, sample_size=min(SILHOUETTE_SAMPLE, len(x)), random_state=seed))


def separation(train, test) -> dict:
    """Speaker separation numbers of one encoder's frames (embedding and 2-D UMAP map)."""
    from svc_core.latent.project import fit_projection

    ref = train.subsample(MAP_FRAMES, 0)
    t0 = time.perf_counter()
    proj = fit_projection(ref.features, "umap", seed=0)
    fit_s = time.perf_counter() - t0
    test_xy = proj.place(test.features)
    return {
        "train_frames": len(train), "test_frames": len(test), "map_frames": len(ref), "umap_fit_s": round(fit_s, 1),
        "silhouette_embedding_cosine": round(silhouette(train.features, train.speaker, "cosine"), 3),
        "silhouette_map_2d": round(silhouette(proj.coords, ref.speaker, "euclidean"), 3),
        "knn_speaker_acc_embedding_pct": round(knn_accuracy(train.features, train.speaker, test.features,
                                                            test.speaker), 1),
        "knn_speaker_acc_map_pct": round(knn_accuracy(proj.coords, ref.speaker, test_xy, test.speaker), 1),
    }


def neighbour_share(train, frames: np.ndarray, target: str) -> float:
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=K_NEIGHBOURS).fit(train.features).kneighbors(frames)
    return 100.0 * float((train.speaker[idx] == target).mean())


def distances(train, frames: np.ndarray, source: str, target: str) -> tuple[float, float]:
    mu_t = train.features[train.speaker == target].mean(0)
    mu_s = train.features[train.speaker == source].mean(0)
    return (float(np.linalg.norm(frames - mu_t, axis=1).mean()), float(np.linalg.norm(frames - mu_s, axis=1).mean()))


def retrieval_effect(voice: str, corpus: Path, workdir: Path) -> dict:
    """Convert held-out clips at each cluster ratio with a k-means file built on the training frames."""
    from svc_core.audio import load_audio
    from svc_core.latent.collect import FrameLabeller
    from svc_core.latent.frames import SILENCE
    from svc_core.pipeline import Svc
    from svc_core.retrieval import save_kmeans, train_kmeans

    model, config = (str(ROOT / p) for p in VOICES[voice])
    svc = Svc(model, config)
    labeller = FrameLabeller(svc.encoder)
    train = embed(labeller, clip_list(corpus, TRAIN_SENTENCES))
    centres = {spk: train_kmeans(train.features[train.speaker == spk], K_CLUSTERS, seed=0)
               for spk in np.unique(train.speaker)}
    kmeans_path = workdir / f"{voice}_kmeans_{K_CLUSTERS}.pt"
    save_kmeans(kmeans_path, centres)
    svc = Svc(model, config, encoder=svc.encoder, cluster_path=str(kmeans_path))
    rows = {"input": [], "mixed": {r: [] for r in RATIOS}, "converted": {r: [] for r in RATIOS}}
    convert_s = 0.0
    for source, target in PAIRS:
        clips = sorted((corpus / "raw" / source).glob("T003*_speech.wav"))[:INPUT_CLIPS_PER_PAIR]
        for path in clips:
            wav, sr = load_audio(str(path))
            inp = labeller.embed(wav, sr, source, "input", path.name)
            inp = inp.take(inp.phone != SILENCE)
            rows["input"].append(_metrics(train, inp.features, source, target))
            for r in RATIOS:
                mixed = svc.retriever.mix(inp.features, target, 0, r)
                rows["mixed"][r].append(_metrics(train, mixed, source, target))
                t0 = time.perf_counter()
                out = svc.slice_inference(wav, sr, target, f0_predictor="pm", cluster_ratio=r, cache=False)
                convert_s += time.perf_counter() - t0
                conv = labeller.embed(out, svc.sample_rate, target, "converted", path.name)
                conv = conv.take(conv.phone != SILENCE)
                rows["converted"][r].append(_metrics(train, conv.features, source, target))
    mean = lambda items: {k: round(float(np.mean([i[k] for i in items])), 3) for k in items[0]}  # noqa: E731
    return {"encoder": svc.encoder.name, "k_clusters_per_speaker": K_CLUSTERS, "pairs": [list(p) for p in PAIRS],
            "clips": len(rows["input"]), "convert_seconds_total": round(convert_s, 1),
            "input": mean(rows["input"]),
            "mixed_features": {str(r): mean(v) for r, v in rows["mixed"].items()},
            "converted_reencoded": {str(r): mean(v) for r, v in rows["converted"].items()}}


def _metrics(train, frames: np.ndarray, source: str, target: str) -> dict:
    d_t, d_s = distances(train, frames, source, target)
    return {"target_share_pct": neighbour_share(train, frames, target),
            "source_share_pct": neighbour_share(train, frames, source),
            "dist_to_target_centroid": d_t, "dist_to_source_centroid": d_s}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def machine() -> dict:
    import torch

    return {"cpu": cpu_name(), "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
            "load1_before": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/svc-latent-starter"))
    parser.add_argument("--json", type=Path, default=JSON_PATH)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from svc_core.encoders import get_encoder
    from svc_core.latent.collect import FrameLabeller

    result = {"machine": machine(), "corpus": str(args.corpus), "separation": {}, "retrieval": {}}
    start = time.perf_counter()
    phones = get_encoder("phoneppg42")
    for name in ("phonevec256", "phoneppg42"):
        labeller = FrameLabeller(get_encoder(name), phones=phones)
        train = embed(labeller, clip_list(args.corpus, TRAIN_SENTENCES))
        test = embed(labeller, clip_list(args.corpus, HELDOUT_SENTENCES))
        result["separation"][name] = separation(train, test)
        print(name, result["separation"][name], flush=True)
    for voice in VOICES:
        result["retrieval"][voice] = retrieval_effect(voice, args.corpus, args.workdir)
        print(voice, json.dumps(result["retrieval"][voice]), flush=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["machine"]["load1_after"] = round(os.getloadavg()[0], 2)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
