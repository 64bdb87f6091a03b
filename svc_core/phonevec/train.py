"""CTC training of phonevec on a corpus built by `corpus.py`, with resume and held-out validation PER.

    train(TrainSettings(corpus="data/phonevec", out="runs/pv", epochs=8))

Files in `out`:
* `state.pt`: everything needed to resume (model, optimizer, step, epoch, batch, best PER, settings);
* `phonevec256.pt`: the encoder file (`checkpoint.py` format) of the best validation PER so far;
* `log.jsonl`: one JSON line per logged step / validation.
Loss: CTC over phone ids (blank 0) on the top layer, plus an optional speaker adversary: a small MLP reads the
feature layer's frames through a gradient-reversal layer and is trained to name the voice, which pushes the
encoder to drop speaker information from that layer (weight `adv_weight`, 0 disables it).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..safe_load import load_torch
from .checkpoint import save_encoder
from .corpus import Corpus, load_corpus
from .ctc import greedy_decode, phone_error_rate
from .data import Batch, OnlineAugment, collate, iterate, load_clip, make_batches
from .model import PhoneVec, PhoneVecConfig, count_parameters
from .voices import VOICE_IDS


@dataclass
class TrainSettings:
    """One training run. Durations are in optimizer steps unless named otherwise."""

    corpus: str
    out: str
    model: PhoneVecConfig = field(default_factory=PhoneVecConfig)
    augment: OnlineAugment = field(default_factory=OnlineAugment)
    epochs: int = 10
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # wall-clock budget; 0 = no limit (the run saves and stops cleanly)
    batch_seconds: float = 60.0  # padded audio per batch
    lr: float = 1e-3
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    adv_weight: float = 0.1  # speaker adversary (gradient reversal) weight; 0 disables
    train_sentences: int = 0  # use only the first N training sentences (0 = all)
    holdout_voices: tuple[str, ...] = ()  # voices never trained on (for probing unseen voices)
    val_sentences: int = 20  # held-out sentences in each validation (x every training voice, clean)
    val_every: int = 500
    log_every: int = 25
    threads: int = 2
    seed: int = 0
    resume: bool = True
    half_checkpoint: bool = False  # store the encoder file in float16


class GradReverse(torch.autograd.Function):
    """Identity forward; gradient multiplied by -scale backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


class SpeakerAdversary(nn.Module):
    """Frames [B, T, D] -> voice logits [B, T, n_voices] through gradient reversal."""

    def __init__(self, dim: int, n_voices: int = len(VOICE_IDS)) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 256), nn.GELU(), nn.Linear(256, n_voices))

    def forward(self, frames: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.net(GradReverse.apply(F.layer_norm(frames, frames.shape[-1:]), scale))


def settings_to_dict(settings: TrainSettings) -> dict[str, Any]:
    """Plain-data view of the settings (JSON and weights_only safe)."""
    return json.loads(json.dumps(dataclasses.asdict(settings)))


def mel_statistics(model: PhoneVec, corpus: Corpus, clips: list[dict[str, Any]], n: int = 200) -> None:
    """Set the model's log-mel mean/std [n_mels] from up to n clean clips (evenly spread)."""
    pick = clips[:: max(1, len(clips) // n)][:n]
    mels = []
    with torch.no_grad():
        for clip in pick:
            mels.append(model.logmel(torch.from_numpy(load_clip(corpus, clip))[None])[0])
    cat = torch.cat(mels, dim=1)
    model.mel_mean.copy_(cat.mean(dim=1))
    model.mel_std.copy_(cat.std(dim=1).clamp(min=1e-3))


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean CTC loss per target phone (blank 0)."""
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # [T, B, C]
    return F.ctc_loss(log_probs, batch.targets, lengths, batch.target_lengths, blank=0, reduction="mean",
                      zero_infinity=True)


def adversary_loss(adv: SpeakerAdversary, frames: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """Frame-level cross entropy of the speaker adversary over valid frames."""
    logits = adv(frames, scale)
    mask = torch.arange(frames.shape[1])[None, :] < lengths[:, None]
    labels = speakers[:, None].expand_as(mask)
    return F.cross_entropy(logits[mask], labels[mask])


def evaluate_per(model: PhoneVec, corpus: Corpus, clips: list[dict[str, Any]], batch_seconds: float = 60.0) -> float:
    """Greedy-CTC phone error rate (%) over `clips` (no augmentation)."""
    model.eval()
    refs, hyps = [], []
    with torch.no_grad():
        for indices in make_batches(clips, batch_seconds, None):
            batch = collate(corpus, clips, indices, None, (0,))
            logits, lengths, _ = model(batch.wav, batch.n_samples)
            hyps.extend(greedy_decode(logits, lengths))
            refs.extend(corpus.targets(clips[i]) for i in indices)
    return phone_error_rate(refs, hyps)


def _lr(settings: TrainSettings, step: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of lr at `total` steps."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = min(1.0, (step - settings.warmup_steps) / max(1, total - settings.warmup_steps))
    return settings.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def training_clips(settings: TrainSettings, corpus: Corpus) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train clips, validation clips): train = training sentences x non-held-out voices x all variants;
    validation = the first val_sentences held-out sentences x the same voices, clean only."""
    voices = [v for v in corpus.voices if v not in settings.holdout_voices]
    train = corpus.select("train", voices, max_sentences=settings.train_sentences or None)
    val = corpus.select("heldout", voices, variants=[0], max_sentences=settings.val_sentences)
    if not train:
        raise ValueError(f"no training clips in {corpus.root} for voices {voices}")
    return train, val


def _log(out: str, record: dict[str, Any]) -> None:
    with open(os.path.join(out, "log.jsonl"), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)


def train(settings: TrainSettings) -> dict[str, Any]:
    """Run (or resume) training; returns {"step", "best_per", "last_loss", "first_loss", "seconds"}."""
    torch.set_num_threads(max(1, settings.threads))
    torch.manual_seed(settings.seed)
    os.makedirs(settings.out, exist_ok=True)
    corpus = load_corpus(settings.corpus)
    train_clips, val_clips = training_clips(settings, corpus)
    model = PhoneVec(settings.model)
    adv = SpeakerAdversary(settings.model.dim)
    params = list(model.parameters()) + list(adv.parameters())
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    state_path = os.path.join(settings.out, "state.pt")
    step, epoch, start_batch, best = 0, 0, 0, float("inf")
    if settings.resume and os.path.isfile(state_path):
        state = load_torch(state_path, what="phonevec training state")
        if PhoneVecConfig.from_dict(state["config"]) != settings.model:
            raise ValueError(f"{state_path} was made with another model config; use a new --out")
        model.load_state_dict(state["model"])
        adv.load_state_dict(state["adversary"])
        opt.load_state_dict(state["optimizer"])
        step, epoch, start_batch, best = state["step"], state["epoch"], state["batch"], state["best_per"]
        print(f"resumed at step {step} (epoch {epoch}, batch {start_batch})", flush=True)
    else:
        mel_statistics(model, corpus, [c for c in train_clips if c["variant"] == 0] or train_clips)
    n_batches = len(make_batches(train_clips, settings.batch_seconds, None))
    total = settings.max_steps or settings.epochs * n_batches
    print(f"{count_parameters(model)} parameters; {len(train_clips)} training clips in ~{n_batches} batches/epoch; "
          f"{len(val_clips)} validation clips; {total} steps planned", flush=True)

    def save() -> None:
        torch.save({"model": model.state_dict(), "adversary": adv.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "epoch": epoch, "batch": start_batch, "best_per": best,
                    "config": settings.model.to_dict(), "settings": settings_to_dict(settings)},
                   state_path + ".part")
        os.replace(state_path + ".part", state_path)

    def validate() -> float:
        nonlocal best
        per = evaluate_per(model, corpus, val_clips, settings.batch_seconds) if val_clips else float("nan")
        if not val_clips or per < best:
            best = per if val_clips else best
            save_encoder(os.path.join(settings.out, "phonevec256.pt"), model, settings.half_checkpoint,
                         {"step": step, "val_per": per, "corpus": os.path.abspath(settings.corpus)})
        _log(settings.out, {"step": step, "val_per": per, "best_per": best})
        model.train()
        return per

    t0, losses, first_loss, stop = time.time(), [], None, False
    model.train()
    while epoch < settings.epochs and not stop:
        for b, _, batch in iterate(corpus, train_clips, settings.batch_seconds, settings.augment, settings.seed,
                                   epoch, start=start_batch):
            for group in opt.param_groups:
                group["lr"] = _lr(settings, step, total)
            logits, lengths, states = model(batch.wav, batch.n_samples, warp=batch.warp)
            loss = ctc_loss(logits, lengths, batch)
            total_loss = loss
            if settings.adv_weight > 0:
                layer = states[settings.model.feature_layer]
                total_loss = loss + settings.adv_weight * adversary_loss(adv, layer, lengths, batch.speakers, 1.0)
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            opt.step()
            step, start_batch = step + 1, b + 1
            losses.append(float(loss.detach()))
            first_loss = first_loss if first_loss is not None else losses[0]
            if step % settings.log_every == 0:
                _log(settings.out, {"step": step, "epoch": epoch, "ctc": float(np.mean(losses[-settings.log_every:])),
                                    "lr": opt.param_groups[0]["lr"], "minutes": (time.time() - t0) / 60})
            if step % settings.val_every == 0:
                validate()
                save()
            out_of_time = settings.max_minutes and time.time() - t0 > settings.max_minutes * 60
            if (settings.max_steps and step >= settings.max_steps) or out_of_time:
                stop = True
                break
        if not stop:
            epoch, start_batch = epoch + 1, 0
    validate()
    save()
    return {"step": step, "best_per": best, "first_loss": first_loss, "last_loss": losses[-1] if losses else None,
            "losses": losses, "seconds": time.time() - t0}
