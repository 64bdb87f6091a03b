"""`python -m bench.latent_umap --corpus DIR`: UMAP of 100k content embeddings (issue #24's target: under 60 s),
with PCA beside it as the baseline, in the same run.

The embeddings are real: phonevec256 frames (256-dim, 50/s, silence included) of the starter voices' generated
speech and singing (`python -m svc_core.starter corpus --out DIR --sentences 50 --songs-per-sentence 1`: 400
clips, ~0.6 h, ~110k frames), encoded once and kept as <workdir>/frames_<N>.npy. Each row then runs in a fresh
process (`--child`, so its peak RSS is its own and numba compiles in it as a user's first map would) with the
thread count given (torch / OpenMP / numba). Timed separately in each child: importing umap-learn, a warm-up fit
on 500 frames (numba's compilation, paid once per process), the PCA fit (svc_core.latent.project.pca_basis),
the UMAP fit on the PCA-reduced frames, placing 5,000 new frames with our kNN placement, and (for comparison)
umap-learn's own transform of the same frames. Rows: PCA alone; what `latent-map` runs (fit_projection: PCA-32,
UMAP seeded on 20k landmark frames, the other 80k placed by kNN); UMAP seeded on all 100k (umap-learn is
single-threaded when seeded); UMAP unseeded on every thread; and the pre-reduction check (UMAP on the raw 256
dims against PCA-32 first, on a 20k subset). Writes bench/last_latent_umap.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = Path(__file__).resolve().parent / "last_latent_umap.json"
N_FRAMES = 100_000
N_NEW = 5_000  # frames placed after the fit (taken out of the fitted set)
WARMUP_FRAMES = 500
PREREDUCE_SUBSET = 20_000
ENCODER = "phonevec256"


def frames_file(corpus: Path, workdir: Path, n: int) -> Path:
    """[n + N_NEW, 256] float32 phonevec256 frames of the corpus clips (encoded once)."""
    path = workdir / f"frames_{n}.npy"
    if path.is_file():
        return path
    from svc_core.audio import load_audio, resample
    from svc_core.encoders import get_encoder

    import torch

    encoder = get_encoder(ENCODER)
    chunks, total = [], 0
    for clip in sorted((corpus / "raw").glob("*/*.wav")):
        wav, sr = load_audio(str(clip))
        feats = encoder.encode(torch.from_numpy(resample(wav, sr, 16000)))[0].T.numpy()
        chunks.append(feats)
        total += len(feats)
        if total >= n + N_NEW:
            break
    if total < n + N_NEW:
        raise SystemExit(f"the corpus gives {total} frames; {n + N_NEW} are needed (render more sentences)")
    x = np.concatenate(chunks)[: n + N_NEW]
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(path, x.astype(np.float32))
    return path


class timed:
    """with timed(steps, name): steps[name] = (wall s, CPU s of this process): on a busy machine the CPU time is
    what the step would take alone (for single-threaded steps)."""

    def __init__(self, steps: dict, name: str) -> None:
        self.steps, self.name = steps, name

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc) -> None:
        self.steps[self.name] = (time.perf_counter() - self.wall, time.process_time() - self.cpu)


def child(row: str, path: Path, n: int) -> dict:
    """One row, timed in this process."""
    import warnings

    from svc_core.latent.project import PCA_DIMS, knn_place, pca_basis

    warnings.filterwarnings("ignore")
    x = np.load(path)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    fit_x, new_x = x[order[:n]], x[order[n: n + N_NEW]]
    out: dict = {"row": row, "frames": len(fit_x), "dim": x.shape[1]}
    if row == "umap-landmark":  # what latent-map runs (fit_projection's steps, each timed): PCA-32, UMAP seeded
        import umap  # on UMAP_MAX_FIT_FRAMES landmarks, the other frames placed by kNN

        from svc_core.latent.project import UMAP_MAX_FIT_FRAMES, umap_coords

        umap.UMAP(random_state=0, n_jobs=1).fit_transform(fit_x[:WARMUP_FRAMES, :PCA_DIMS])
        steps = {}
        with timed(steps, "pca"):
            mean, basis = pca_basis(fit_x, PCA_DIMS)
            reduced = ((fit_x - mean) @ basis.T).astype(np.float32)
        marks = np.sort(np.random.default_rng(0).choice(len(reduced), UMAP_MAX_FIT_FRAMES, replace=False))
        rest = np.setdiff1d(np.arange(len(reduced)), marks)
        with timed(steps, "umap_landmarks"):
            coords = umap_coords(reduced[marks], 0, 15, 0.1, False)
        with timed(steps, "knn_place_rest"):
            knn_place(reduced[marks], coords, reduced[rest], 8)
        out["landmarks"] = UMAP_MAX_FIT_FRAMES
        out.update({f"{k}_s": v[0] for k, v in steps.items()})
        out.update({f"{k}_cpu_s": v[1] for k, v in steps.items()})
        out["umap_fit_s"] = sum(v[0] for v in steps.values())
        out["umap_fit_cpu_s"] = sum(v[1] for v in steps.values())
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}
    t = time.perf_counter()
    mean, basis = pca_basis(fit_x, 2 if row == "pca" else PCA_DIMS)
    reduced = (fit_x - mean) @ basis.T
    out["pca_fit_s"] = time.perf_counter() - t
    if row == "pca":
        t = time.perf_counter()
        (new_x - mean) @ basis.T
        out["transform_s"] = time.perf_counter() - t
    else:
        t = time.perf_counter()
        import umap

        out["import_s"] = time.perf_counter() - t
        seeded = row != "umap-parallel"
        kw = dict(random_state=0, n_jobs=1) if seeded else dict(n_jobs=-1)
        t = time.perf_counter()
        umap.UMAP(**kw).fit_transform(reduced[:WARMUP_FRAMES])
        out["warmup_fit_500_s"] = time.perf_counter() - t
        data = reduced
        if row.startswith("prereduce"):
            data = fit_x[:PREREDUCE_SUBSET] if row == "prereduce-raw" else reduced[:PREREDUCE_SUBSET]
            out["frames"] = len(data)
            out["dim"] = data.shape[1]
        t, cpu = time.perf_counter(), time.process_time()
        reducer = umap.UMAP(**kw)
        coords = reducer.fit_transform(data)
        out["umap_fit_s"] = time.perf_counter() - t
        out["umap_fit_cpu_s"] = time.process_time() - cpu
        if row in ("umap-seeded", "umap-parallel"):
            new_reduced = (new_x - mean) @ basis.T
            t = time.perf_counter()
            knn_place(data, coords, new_reduced.astype(np.float32), 8)
            out["knn_place_5k_s"] = time.perf_counter() - t
            t = time.perf_counter()
            reducer.transform(new_reduced)
            out["umap_transform_5k_s"] = time.perf_counter() - t
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SVC_THREADS"):
        env[key] = str(threads)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--frames", type=int, default=N_FRAMES)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rows", default="pca,umap-landmark,umap-seeded,umap-parallel,prereduce-raw,prereduce-pca")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/svc-latent-umap"))
    parser.add_argument("--json", type=Path, default=JSON_PATH)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--frames-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.frames_file, args.frames)))
        return
    if args.corpus is None:
        parser.error("--corpus is needed")
    path = frames_file(args.corpus, args.workdir, args.frames)
    rows = []
    for row in args.rows.split(","):
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-m", "bench.latent_umap", "--child", row, "--frames-file", str(path),
                               "--frames", str(args.frames)], cwd=ROOT, env=thread_env(args.threads),
                              capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(threads=args.threads, load1_before=round(load, 2))
        rows.append(result)
        print(json.dumps(result), flush=True)
    import umap

    from bench.latent_starter import cpu_name

    doc = {"machine": {"cpu": cpu_name(), "cpus": len(os.sched_getaffinity(0))}, "umap_learn": umap.__version__,
           "embeddings": f"{ENCODER} frames of the starter corpus ({args.corpus})", "rows": rows}
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
