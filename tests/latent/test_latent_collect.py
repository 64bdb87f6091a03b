"""Frames and labels from the four sources, with real encoders (the shipped phonevec256.pt)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from latent_factories import CLIPS_PER_SPEAKER, K_CLUSTERS, SPEAKERS, SR
from svc_core.errors import OptionError
from svc_core.latent.collect import (FRAME_SECONDS, ConversionSpec, FrameLabeller, converted_frames,
                                     dataset_clips, dataset_frames, retrieval_frames)
from svc_core.latent.frames import SILENCE, FrameSet
from svc_core.phonevec.text import PHONES


def test_embed_shapes_and_labels(starter_svc, input_wav):
    labeller = FrameLabeller(starter_svc.encoder)
    f = labeller.embed(input_wav, SR, "input", "input", "in.wav")
    n = len(input_wav) * 16000 // SR // 320
    assert f.features.shape == (n, 42)  # phoneppg42: a posteriorgram per 20 ms frame
    assert np.allclose(f.features.sum(1), 1 + f.features[:, 0], atol=1e-4)  # blank + phone distribution
    assert np.allclose(f.time_s, np.arange(n) * FRAME_SECONDS)
    assert set(f.phone) <= set(PHONES) | {SILENCE} and SILENCE in set(f.phone)
    assert set(f.speaker) == {"input"} and set(f.source) == {"input"} and set(f.clip) == {"in.wav"}
    # the phrase is silent for 0.3 s each second (0.7-1.0 s): those frames are "sil" and unvoiced
    gap = (f.time_s > 0.75) & (f.time_s < 0.95)
    assert (f.phone[gap] == SILENCE).all() and (f.pitch_hz[gap] == 0).all()
    sung = (f.time_s > 0.05) & (f.time_s < 0.45)  # notes 220 / 247 Hz with +-0.3 semitone vibrato
    assert np.median(f.pitch_hz[sung]) == pytest.approx(233, rel=0.1)


def test_dataset_frames_speakers_and_feature_cache(dataset_dir, phonevec256, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(dataset_dir, root)
    labeller = FrameLabeller(phonevec256, phones=False)
    assert [s for s, _ in dataset_clips(root)] == [s for s in SPEAKERS for _ in range(CLIPS_PER_SPEAKER)]
    plain = dataset_frames(root, labeller)
    assert plain.dim == 256 and set(plain.source) == {"training"}
    assert set(plain.clip) == {f"{s}/clip{i}.wav" for s in SPEAKERS for i in range(CLIPS_PER_SPEAKER)}
    first = plain.clip == "alto/clip0.wav"
    # a preprocess cache beside the clip (X.wav.soft.pt, [1, C, T]) is read instead of encoding
    clip = root / "alto" / "clip0.wav"
    marker = torch.full((1, 256, int(first.sum())), 7.0)
    torch.save(marker, f"{clip}.soft.pt")
    cached = dataset_frames(root, labeller)
    assert (cached.features[cached.clip == "alto/clip0.wav"] == 7.0).all()
    assert np.array_equal(cached.features[~first], plain.features[~first])
    # ... unless it is older than its clip, or another encoder's width
    os.utime(f"{clip}.soft.pt", ns=(0, 0))
    assert np.array_equal(dataset_frames(root, labeller).features, plain.features)
    torch.save(torch.full((1, 42, int(first.sum())), 7.0), f"{clip}.soft.pt")
    assert np.array_equal(dataset_frames(root, labeller).features, plain.features)


def test_dataset_errors_are_messages(tmp_path, phonevec256):
    with pytest.raises(OptionError, match="does not exist"):
        dataset_clips(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionError, match="No .wav"):
        dataset_clips(tmp_path / "empty")


def test_retrieval_frames_kmeans_and_faiss(sovits_voice, tmp_path):
    from svc_core.retrieval import build_faiss_index, load_retrieval, save_index_pickle

    centres = retrieval_frames(load_retrieval(str(sovits_voice["kmeans"])))
    assert len(centres) == K_CLUSTERS * len(SPEAKERS) and set(centres.source) == {"centre"}
    assert np.array_equal(centres.features[centres.speaker == "bass"], sovits_voice["centres"]["bass"])
    assert np.isnan(centres.time_s).all() and np.isnan(centres.pitch_hz).all()
    rows = np.random.default_rng(0).standard_normal((200, 256)).astype(np.float32)
    path = tmp_path / "feature_and_index.pkl"
    save_index_pickle(path, {0: build_faiss_index(rows), 1: build_faiss_index(rows[:100] + 1)})
    index = retrieval_frames(load_retrieval(str(path)), speakers=["alto", "bass"])
    assert set(index.source) == {"index"} and len(index) == 300
    alto = index.features[index.speaker == "alto"]
    # reconstruct gives the stored rows back (in the index's own order)
    assert np.allclose(np.sort(alto, axis=0), np.sort(rows, axis=0))
    assert retrieval_frames(None) is None


def test_converted_frames_follow_the_cluster_ratio(sovits_voice, phonevec256, input_wav):
    from svc_core.pipeline import Svc

    svc = Svc(sovits_voice["model"], sovits_voice["config"], encoder=phonevec256,
              cluster_path=str(sovits_voice["kmeans"]))
    labeller = FrameLabeller(phonevec256, phones=False)
    plain, audio = converted_frames(svc, input_wav, SR, ConversionSpec("bass", 0, 0.0), labeller, "in.wav")
    assert audio.dtype == np.float32 and abs(len(audio) - len(input_wav)) <= svc.hop_length
    assert set(plain.source) == {"converted"} and set(plain.speaker) == {"bass"} and plain.dim == 256
    assert set(plain.clip) == {"in.wav -> bass"}
    pulled, audio1 = converted_frames(svc, input_wav, SR, ConversionSpec("bass", 0, 1.0), labeller, "in.wav")
    assert len(pulled) == len(plain) and not np.allclose(audio1, audio)


def test_frameset_subsample_and_arrays():
    f = FrameSet.uniform(np.arange(20, dtype=np.float32).reshape(10, 2), "a", "input", "c")
    sub = f.subsample(4, seed=1)
    assert len(sub) == 4 and np.all(np.diff(sub.features[:, 0]) > 0)  # kept in order
    assert np.array_equal(sub.features, f.subsample(4, seed=1).features)
    back = FrameSet.from_arrays(f.to_arrays("p_"), "p_")
    assert np.array_equal(back.features, f.features) and list(back.speaker) == ["a"] * 10
    with pytest.raises(ValueError):
        FrameSet(np.zeros((3, 2)), ["a"], ["b"] * 3, [""] * 3, [0] * 3, [0] * 3, [""] * 3)
