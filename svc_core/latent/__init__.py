"""Latent map of content embeddings: which frames sit where, for a voice's training clips, an input clip, its
conversion re-encoded and the voice's cluster centres / index rows (`python -m svc_core latent-map`).

    labeller = FrameLabeller(svc.encoder)
    lmap = build_map(svc, MapRequest(dataset="dataset/44k"), labeller, InputClip(wav, sr, "song.wav"))
    export_all(lmap, "out/map", color="speaker")   # out/map.csv, .npz, .png
"""
from .build import InputClip, LatentMap, MapRequest, build_map
from .collect import ConversionSpec, FrameLabeller, converted_frames, dataset_frames, retrieval_frames
from .export import COLOR_KEYS, export_all, write_csv, write_npz, write_png
from .frames import SOURCES, FrameSet
from .project import METHODS, Projection, fit_projection

__all__ = ["COLOR_KEYS", "ConversionSpec", "FrameLabeller", "FrameSet", "InputClip", "LatentMap", "METHODS",
           "MapRequest", "Projection", "SOURCES", "build_map", "converted_frames", "dataset_frames", "export_all",
           "fit_projection", "retrieval_frames", "write_csv", "write_npz", "write_png"]
