"""`python -m svc_core latent-map -m G.pth -c config.json [--dataset DIR] [-i clip.wav [--convert -s SPK ...]]
--out PREFIX`: the voice's latent map (svc_core.latent) written as PREFIX.csv, PREFIX.npz and PREFIX.png."""
from __future__ import annotations

import argparse
import os
import time

from . import families
from .errors import ModelError, OptionError
from .latent.build import MAX_REFERENCE_FRAMES, InputClip, MapRequest, build_map
from .latent.collect import MAX_CLIPS_PER_SPEAKER, ConversionSpec, FrameLabeller
from .latent.export import COLOR_KEYS, export_all
from .latent.project import METHODS
from .paths import require_file

HELP = "draw a voice's content embeddings in 2-D (UMAP/PCA): training clips, an input, its conversion, centres"
CACHE_SUBDIR = "latent"


def default_cache_dir() -> str:
    """The per-user cache folder's latent/ (e.g. ~/.cache/svc-studio/latent)."""
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("svc-studio", appauthor=False), CACHE_SUBDIR)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .infer_cli import add_voice_arguments

    add_voice_arguments(p)
    p.add_argument("--cluster", "-cm", "--index", dest="cluster", default=None,
                   help="the voice's k-means (kmeans_10000.pt) or feature index: its centres / rows go on the map, "
                        "and --convert can use it (--cluster-ratio)")
    p.add_argument("--dataset", default=None, help="the voice's training clips: a folder of <speaker>/<clip>.wav "
                   "(preprocessed .soft.pt caches beside the clips are reused)")
    p.add_argument("-i", "--input", default=None, help="an input clip to place on the map")
    p.add_argument("--convert", action="store_true", help="also convert the input and place the conversion, "
                   "re-encoded")
    p.add_argument("-s", "--speaker", default=None, help="target speaker of --convert (default: the first)")
    p.add_argument("-t", "--transpose", type=float, default=0.0, help="semitones for --convert")
    p.add_argument("-cr", "--cluster-ratio", dest="cluster_ratio", type=float, default=0.0,
                   help="0..1 cluster/retrieval share for --convert (needs --cluster)")
    p.add_argument("--f0", default="pm", help="f0 predictor of --convert (default pm: fast, no weights)")
    p.add_argument("--method", choices=METHODS, default="umap",
                   help="umap (umap-learn; PCA if it is not installed) or pca (fast, linear)")
    p.add_argument("--color", choices=COLOR_KEYS, default="speaker", help="what the PNG's colours show")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.csv, PREFIX.npz, PREFIX.png")
    p.add_argument("--max-frames", type=int, default=MAX_REFERENCE_FRAMES,
                   help=f"reference frames kept, seeded subsample (default {MAX_REFERENCE_FRAMES})")
    p.add_argument("--max-clips-per-speaker", type=int, default=MAX_CLIPS_PER_SPEAKER,
                   help=f"training clips read per speaker (default {MAX_CLIPS_PER_SPEAKER})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="where fitted maps are kept (default: the per-user cache, "
                   "svc-studio/latent)")
    p.add_argument("--no-cache", action="store_true", help="fit the map again and keep nothing")


def load_voice(model: str | None, config: str | None, cluster: str | None):
    """The voice as infer loads it: an .onnx export on ONNX Runtime, anything else through svc_core.pipeline.Svc."""
    if not model:
        raise OptionError("-m/--model is needed (a G_*.pth, a WORLD W_*.pth, an RVC .pth or an .onnx).")
    require_file(model, "Model file", ModelError)
    kind = families.identify(model, config)
    if kind.name == "so-vits-onnx":
        from .onnx import OnnxSvc

        return OnnxSvc(model, config, cluster_path=cluster)
    if kind.needs_config and not config:
        raise OptionError(f"-c/--config is needed with a {kind.label} model.")
    from .pipeline import Svc

    return Svc(model, config, cluster_path=cluster)


def run(args: argparse.Namespace) -> int:
    if args.max_frames < 4 or args.max_clips_per_speaker < 1:
        raise OptionError("--max-frames must be at least 4 and --max-clips-per-speaker at least 1.")
    if args.convert and not args.input:
        raise OptionError("--convert needs an input clip (-i).")
    if args.cluster_ratio and not args.cluster:
        raise OptionError("--cluster-ratio needs the voice's cluster or index file (--cluster).")
    start = time.perf_counter()
    svc = load_voice(args.model, args.config, args.cluster)
    clip = None
    if args.input:
        from .audio import load_audio

        wav, sr = load_audio(args.input)
        clip = InputClip(wav, sr, os.path.basename(args.input))
    conversion = None
    if args.convert:
        speaker = args.speaker if args.speaker is not None else svc.speakers[0]
        conversion = ConversionSpec(speaker, args.transpose, args.cluster_ratio, args.f0)
    request = MapRequest(dataset=args.dataset, method=args.method, max_frames=args.max_frames,
                         max_per_speaker=args.max_clips_per_speaker, seed=args.seed,
                         cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()))
    lmap = build_map(svc, request, FrameLabeller(svc.encoder), clip, conversion)
    paths = export_all(lmap, args.out, args.color)
    for note in lmap.notes:
        print(f"note: {note}")
    fitted = "loaded from the cache" if lmap.from_cache else "fitted"
    print(f"{len(lmap.frames)} frames ({lmap.reference_count} reference, {fitted}), {lmap.method}, encoder "
          f"{svc.encoder.name}, {time.perf_counter() - start:.1f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0
