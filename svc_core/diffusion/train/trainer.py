"""The diffusion training loop, as upstream's train_diff.py + diffusion/solver.py: Unit2Mel, noise-prediction MSE
at random steps t < k_step_max on 2 s crops with pitch/volume augmentation, AdamW, StepLR, amp dtype, validation
and checkpoints every interval_val steps.

    config = load_diffusion_config("dataset/diffusion.yaml")
    summary = DiffTrainer("dataset", "logs/44k/diffusion", DiffTrainSettings.from_config(config, steps=2000)).fit()

Resume: the highest model_{step}.pt in the run folder continues (step count, weights, and the AdamW state when it
was saved); a lone model_0.pt there (or --base) is a pretrained base: training starts at step 0 from its weights.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...errors import SvcError
from ...precision import check_precision
from ...train.checkpoints import load_optimizer_state
from ..config import DiffusionConfig, load_diffusion_config
from ..unit2mel import N_MELS, Unit2Mel
from . import checkpoints as ck
from .dataset import DiffDataset
from .settings import DiffTrainSettings
from .validation import DiffValidation, sample_clips, validation_loss

log = logging.getLogger("svc_core.train")
DEFAULT_CONFIG_NAME = "diffusion.yaml"  # preprocess --use-diff writes it beside config.json
BATCH_KEYS = ("units", "f0", "volume", "mel", "spk_id", "aug_shift")


class TrainingError(SvcError):
    """Training cannot go on (non-finite loss, nothing to train on, ...)."""


@dataclass
class DiffTrainSummary:
    step: int
    epoch: int
    interrupted: bool = False
    saved: list[Path] = field(default_factory=list)
    last_loss: float | None = None
    validation: DiffValidation | None = None


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class DiffTrainer:
    """Trains the diffusion model of `data_dir` (its diffusion.yaml, or `config_path`) into `out_dir`."""

    def __init__(self, data_dir, out_dir, settings: DiffTrainSettings | None = None,
                 config_path: str | Path | None = None) -> None:
        self.data_dir, self.out_dir = Path(data_dir), Path(out_dir)
        self.config: DiffusionConfig = load_diffusion_config(config_path or self.data_dir / DEFAULT_CONFIG_NAME)
        s = self.settings = settings or DiffTrainSettings.from_config(self.config)
        self.device = torch.device(s.device)
        self.amp_dtype = check_precision(s.amp_dtype, self.device, option="amp_dtype")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=s.amp_dtype == "fp16")
        self.vocoder = self._load_vocoder()
        n_mels = int(self.vocoder.n_mels) if self.vocoder is not None else N_MELS
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)

        self.train_set = DiffDataset(self.data_dir, self.config, "train", crop_seconds=s.duration, use_aug=True,
                                     n_mels=n_mels, cache=s.cache_all_data, cache_fp16=s.cache_fp16)
        self.val_set = DiffDataset(self.data_dir, self.config, "val", crop_seconds=None, use_aug=False,
                                   n_mels=n_mels, cache=s.cache_all_data, cache_fp16=s.cache_fp16)
        workers = s.num_workers or 0
        self.train_loader = DataLoader(self.train_set, batch_size=s.batch_size, shuffle=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(s.seed),
                                       persistent_workers=workers > 0, pin_memory=self.device.type == "cuda")
        self.model = Unit2Mel.from_config(self.config, out_dims=n_mels).to(self.device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path, why in self.train_set.skipped:
            self._log(f"skipping {path}: {why} (shorter than the training crop)")
        self.step, self.epoch = 0, 0
        self._restore()
        for group in self.optimizer.param_groups:  # as upstream: lr from the step, weight decay from the yaml
            group["initial_lr"] = s.learning_rate
            group["lr"] = s.lr_at(self.step)  # StepLR's first step below turns it into lr_at(step + 1)
            group["weight_decay"] = s.weight_decay
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=s.decay_step, gamma=s.gamma,
                                                         last_epoch=self.step - 2)
        self.keeper = ck.keeper(self.out_dir, s.keep_best, s.interval_force_save)
        self.last_saved_step = self.step
        self.validation: DiffValidation | None = None
        self.saved: list[Path] = []
        self._write_config()

    # ------------------------------------------------------------------------------------------ setup
    def _log(self, msg: str, level: int = logging.INFO) -> None:
        log.log(level, msg)
        if self.out_dir.is_dir():
            with open(self.out_dir / "train.log", "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    def _load_vocoder(self):
        if not self.settings.vocoder:
            return None
        from ...vocoders import VocoderNeeds, load_mel_vocoder

        needs = VocoderNeeds(self.config.sampling_rate, self.config.block_size, None, f"'{self.config.source}'")
        return load_mel_vocoder(self.settings.vocoder, kind=self.config.vocoder_type, device=self.device,
                                needs=needs)

    def _write_config(self) -> None:
        """config.yaml in the run folder, upstream's layout, with the values this run trains with."""
        doc = self.config.to_dict()
        s = self.settings
        doc.setdefault("data", {})["duration"] = s.duration
        doc["device"] = s.device
        doc.setdefault("env", {})["expdir"] = self.out_dir.as_posix()
        if s.vocoder:
            doc.setdefault("vocoder", {})["ckpt"] = str(s.vocoder)
        doc["train"] = {**doc.get("train", {}), "batch_size": s.batch_size, "lr": s.learning_rate,
                        "decay_step": s.decay_step, "gamma": s.gamma, "weight_decay": s.weight_decay,
                        "amp_dtype": s.amp_dtype, "interval_log": s.interval_log, "interval_val": s.interval_val,
                        "interval_force_save": s.interval_force_save, "save_opt": s.save_opt, "epochs": s.epochs,
                        "keep_best": s.keep_best}
        from ..config import diffusion_config_from_dict

        diffusion_config_from_dict(doc, source=ck.CONFIG_NAME).save(self.out_dir / ck.CONFIG_NAME)

    def _restore(self) -> None:
        s = self.settings
        latest = ck.latest_checkpoint(self.out_dir)
        if latest is not None and latest[0] > 0:
            step, path = latest
            ckpt = ck.read_checkpoint(path)
            ck.load_state(self.model, self.config, ckpt.model, path.name, base=False, log=self._log)
            why = load_optimizer_state(self.optimizer, ckpt.optimizer)
            if why:
                self._log(f"AdamW state of {path.name} not loaded ({why}); starting a fresh optimizer")
            self.step = ckpt.step
            self._log(f"resumed from {path.name}: step {self.step}"
                      + ("; --base ignored (the run already has checkpoints)" if s.base else ""))
            return
        source = Path(s.base) if s.base else (latest[1] if latest else None)
        if source is None:
            return
        ckpt = ck.read_checkpoint(source)
        ck.load_state(self.model, self.config, ckpt.model, source.name, base=True, log=self._log)
        dst = ck.checkpoint_path(self.out_dir, 0)
        if not (dst.exists() and dst.resolve() == source.resolve()):
            shutil.copyfile(source, dst)
        self._log(f"loaded pretrained base {source.name} (kept as model_0.pt); training starts at step 0")

    # ------------------------------------------------------------------------------------------ step
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: dict) -> float:
        """One AdamW step on `batch` (a DataLoader batch of DiffDataset items); returns the loss."""
        b = {k: batch[k].to(self.device, non_blocking=True) for k in BATCH_KEYS}
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.model.loss(b["units"].float(), b["f0"], b["volume"], b["mel"].float(), spk_id=b["spk_id"],
                                   aug_shift=b["aug_shift"])
        if not torch.isfinite(loss):
            names = list(batch.get("name", []))
            raise TrainingError(f"step {self.step + 1}: the loss is {float(loss)} (batch: {', '.join(names[:4])}). "
                                "Lower the learning rate, train in fp32 (--amp fp32) or check the clips named.")
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return float(loss.detach())

    # ------------------------------------------------------------------------------------------ eval / save
    def evaluate(self, step: int | None = None) -> DiffValidation:
        """Validation loss, and with settings.eval_audio the sampled mel (+ audio) written to eval/{step}/."""
        s = self.settings
        loss = validation_loss(self.model, self.val_set, s.val_repeats, self.device)
        result = DiffValidation(loss)
        if s.eval_audio and s.max_eval_clips > 0:
            result.mel_l1, result.written = sample_clips(
                self.model, self.val_set, s.max_eval_clips, s.infer_method, s.infer_speedup, self.device,
                self.vocoder, self.out_dir if step is not None else None, step)
        return result

    def checkpoint(self, evaluate: bool = True) -> Path:
        """Write model_{step}.pt, validate, and prune by upstream's rule + keep-best."""
        s = self.settings
        path = ck.save_checkpoint(self.out_dir, self.step, self.model, self.optimizer if s.save_opt else None)
        self.saved.append(path)
        result = self.evaluate(self.step) if evaluate else None
        deleted = self.keeper.add(self.step, result.loss if result is not None else None)
        self.validation = result
        self.last_saved_step = self.step
        self._log(f"saved {path.name} (" + (result.describe() if result is not None else "not validated") + ")"
                  + (f"; removed step(s) {deleted}" if deleted else ""))
        return path

    # ------------------------------------------------------------------------------------------ loop
    def _done(self) -> bool:
        s = self.settings
        return (s.steps is not None and self.step >= s.steps) or self.epoch >= s.epochs

    def fit(self) -> DiffTrainSummary:
        """Train until `steps` (or `epochs`); checkpoint every interval_val steps and at the end; Ctrl-C saves."""
        s = self.settings
        summary = DiffTrainSummary(self.step, self.epoch)
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self._log(f"training a {n_params / 1e6:.2f} M-parameter diffusion model on {len(self.train_set)} clips "
                  f"({len(self.train_loader)} batches of {s.batch_size}, {s.duration:g} s crops, t < "
                  f"{self.model.decoder.k_step_max}) on {self.device} in {s.amp_dtype}, from step {self.step}")
        t_last, step_last = time.perf_counter(), self.step
        try:
            while not self._done():
                for batch in self.train_loader:
                    summary.last_loss = self.train_step(batch)
                    if self.step % s.interval_log == 0 or self.step == summary.step + 1:
                        now = time.perf_counter()
                        rate = (self.step - step_last) / max(now - t_last, 1e-9)
                        t_last, step_last = now, self.step
                        eta = f" | ETA {_fmt_time((s.steps - self.step) / max(rate, 1e-9))}" if s.steps else ""
                        self._log(f"step {self.step}{f'/{s.steps}' if s.steps else ''} epoch {self.epoch} | loss "
                                  f"{summary.last_loss:.4f} | lr {self.optimizer.param_groups[0]['lr']:.3e} | "
                                  f"{rate:.2f} step/s{eta}")
                    if self.step % s.interval_val == 0:
                        self.checkpoint()
                    if self._done():
                        break
                else:
                    self.epoch += 1
                    continue
                break
            if self.step != self.last_saved_step:
                self.checkpoint()
        except KeyboardInterrupt:
            summary.interrupted = True
            if self.step != self.last_saved_step:
                self._log(f"interrupted: saving step {self.step} (run again to resume)")
                self.checkpoint(evaluate=False)
        summary.step, summary.epoch = self.step, self.epoch
        summary.saved, summary.validation = self.saved, self.validation
        return summary
