"""Does a phonevec layer carry content and not speaker? Numbers on held-out sentences.

* Content: phone error rate (%) of greedy CTC decoding, on clean held-out clips (overall and per voice, so a voice
  held out of training shows up on its own), on their WORLD variants (pitch/formant/singing) if the corpus has
  them, and under a fixed strong online augmentation (speed 1.1, VTLP 1.1, noise at 20 dB SNR).
* Speaker: a logistic-regression speaker-ID probe over the corpus voices, trained on the clips of the first half
  of the held-out sentences and tested on the second half (so sentence content cannot help). Per frame
  (non-silent frames, at most `frames_per_clip` per clip) and per utterance (mean-pooled frames), on the probed
  hidden layers and on the posteriorgram (`phoneppg42`). The same probe on standardised log-mel frames is the
  baseline; chance is 1 / number of voices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_encoder
from .corpus import Corpus, load_corpus
from .ctc import greedy_decode, phone_error_rate
from .data import OnlineAugment, collate, load_clip
from .model import PhoneVec
from .train import evaluate_per

STRONG_AUGMENT = OnlineAugment(p_speed=1.0, speed_range=(1.1, 1.1), gain_db=(0.0, 0.0), p_noise=1.0,
                               snr_db=(20.0, 20.0), p_reverb=0.0, p_vtlp=1.0, vtlp_range=(1.1, 1.1))


@dataclass
class ProbeSettings:
    """Which encoder, corpus and held-out sentences to probe."""

    corpus: str
    encoder: str
    sentences: int = 20  # held-out sentences used (split in halves for the speaker probe)
    layers: tuple[int, ...] = ()  # layers to probe (default: the checkpoint's feature_layer)
    frames_per_clip: int = 60
    silence_db: float = 35.0  # frames more than this below the clip's loudest frame are dropped
    seed: int = 0


@dataclass
class ProbeReport:
    """PER numbers (%) and speaker-probe accuracies (%), chance level included."""

    n_voices: int
    n_sentences: int
    chance_pct: float
    per_clean: float
    per_by_voice: dict[str, float]
    per_world_variants: float | None
    per_strong_augment: float
    speaker_id: dict[str, dict[str, float]] = field(default_factory=dict)


def per_by_voice(model: PhoneVec, corpus: Corpus, clips: list[dict[str, Any]]) -> dict[str, float]:
    """PER (%) per voice id."""
    return {v: evaluate_per(model, corpus, [c for c in clips if c["voice"] == v])
            for v in sorted({c["voice"] for c in clips})}


def per_augmented(model: PhoneVec, corpus: Corpus, clips: list[dict[str, Any]], aug: OnlineAugment) -> float:
    """PER (%) with each clip augmented by `aug` (one clip per batch, seeded by its index)."""
    refs, hyps = [], []
    with torch.no_grad():
        for i in range(len(clips)):
            batch = collate(corpus, clips, [i], aug, (i,))
            logits, lengths, _ = model(batch.wav, batch.n_samples, warp=batch.warp)
            hyps.extend(greedy_decode(logits, lengths))
            refs.append(corpus.targets(clips[i]))
    return phone_error_rate(refs, hyps)


def clip_frames(model: PhoneVec, wav: np.ndarray, layers: tuple[int, ...], silence_db: float) -> dict[str, np.ndarray]:
    """Non-silent frames of one clip at 50 frames/s: {"logmel": [T', 80], "layer<k>": [T', dim],
    "ppg": [T', n_classes]} (the phoneppg42 posteriorgram)."""
    with torch.no_grad():
        x = torch.from_numpy(wav)[None]
        mel = model.normalized_mel(x)[0, :, ::2]  # 100 -> 50 frames/s
        states, _ = model.hidden(x, upto=max(layers))
        t = states[0].shape[1]
        energy = model.logmel(x)[0].exp().sum(0)[::2][:t].log() * (10.0 / np.log(10.0))  # dB
        keep = (energy > energy.max() - silence_db).numpy()
        out = {"logmel": mel[:, :t].T.numpy()[keep]}
        for k in layers:
            out[f"layer{k}"] = F.layer_norm(states[k][0], (model.cfg.dim,)).numpy()[keep]
        out["ppg"] = model.posteriors(x)[0, :, :t].T.numpy()[keep]
    return out


def speaker_probe(train: dict[str, list], test: dict[str, list], train_y: list[int], test_y: list[int],
                  frames_per_clip: int, seed: int) -> dict[str, dict[str, float]]:
    """Logistic-regression speaker ID per feature kind: {"kind": {"frame_acc_pct", "utt_acc_pct"}}."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)

    def frames(clips: list[np.ndarray], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for feats, y in zip(clips, labels):
            pick = rng.choice(len(feats), size=min(frames_per_clip, len(feats)), replace=False)
            xs.append(feats[np.sort(pick)])
            ys.append(np.full(len(pick), y))
        return np.concatenate(xs), np.concatenate(ys)

    def fit_score(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> float:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
        clf.fit(xtr, ytr)
        return 100.0 * float(clf.score(xte, yte))

    result = {}
    for kind in train:
        xtr, ytr = frames(train[kind], train_y)
        xte, yte = frames(test[kind], test_y)
        utr = np.stack([f.mean(0) for f in train[kind]])
        ute = np.stack([f.mean(0) for f in test[kind]])
        result[kind] = {"frame_acc_pct": fit_score(xtr, ytr, xte, yte),
                        "utt_acc_pct": fit_score(utr, np.asarray(train_y), ute, np.asarray(test_y))}
    return result


def run_probe(settings: ProbeSettings, model: PhoneVec | None = None) -> ProbeReport:
    """All probes for one encoder file (or an in-memory model) on the corpus' held-out sentences."""
    corpus = load_corpus(settings.corpus)
    model = (model or load_encoder(settings.encoder)).eval()
    layers = settings.layers or (model.cfg.feature_layer,)
    clean = corpus.select("heldout", variants=[0], max_sentences=settings.sentences)
    if not clean:
        raise ValueError(f"{settings.corpus} has no held-out clips")
    world = [c for c in corpus.select("heldout", max_sentences=settings.sentences) if c["variant"] > 0]
    sentence_ids = sorted({c["sentence"] for c in clean})
    first_half = set(sentence_ids[: max(1, len(sentence_ids) // 2)])
    voices = sorted({c["voice"] for c in clean})
    train: dict[str, list] = {}
    test: dict[str, list] = {}
    train_y: list[int] = []
    test_y: list[int] = []
    for clip in clean:
        feats = clip_frames(model, load_clip(corpus, clip), layers, settings.silence_db)
        side, labels = (train, train_y) if clip["sentence"] in first_half else (test, test_y)
        for kind, value in feats.items():
            side.setdefault(kind, []).append(value)
        labels.append(voices.index(clip["voice"]))
    by_voice = per_by_voice(model, corpus, clean)
    return ProbeReport(
        n_voices=len(voices), n_sentences=len(sentence_ids), chance_pct=100.0 / len(voices),
        per_clean=evaluate_per(model, corpus, clean), per_by_voice=by_voice,
        per_world_variants=evaluate_per(model, corpus, world) if world else None,
        per_strong_augment=per_augmented(model, corpus, clean, STRONG_AUGMENT),
        speaker_id=speaker_probe(train, test, train_y, test_y, settings.frames_per_clip, settings.seed) if test_y
        else {},
    )
