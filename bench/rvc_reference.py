"""The RVC bench's baseline: "torch eager, RVC's procedure" - RVC WebUI's conversion (commit d60cd3d,
infer/modules/vc/modules.py `VC.vc_single` -> infer/modules/vc/pipeline.py `Pipeline.pipeline`, CPU/fp32 config)
re-typed on svc_core's model classes WITHOUT svc_core's engine changes. The model math is RVC's (tests/rvc parity),
so this is a same-machine estimate of what RVC itself costs.

What it does as RVC does (and our engine does differently):
- the synthesizer as RVC's get_vc leaves it: weight norm KEPT (RVC never calls remove_weight_norm at inference;
  every forward recomputes w = g v / ||v||), fp32, no posterior;
- every segment (<= 41 s, plus 1 s reflect padding each side) decoded by ONE decoder call, the padding included
  (ours: chunks, the trimmed 1 s pads skipped);
- HuBERT over the whole padded segment in one call; RVC's retrieval (the index read and `reconstruct_n` per
  conversion, one k=8 search over the whole segment, w = (1/d)^2); protect; x2 nearest upsampling;
- f0: pm through parselmouth exactly as RVC calls it; rmvpe as RVC's infer/lib/rmvpe.py runs it: the model loaded
  on first use, the log-mel of the whole padded input, ONE network call (frames padded to a multiple of 32), and
  RVC's decoding (numpy, a Python loop over the frames; threshold 0.03);
- change_rms (librosa RMS, 0.5 s frames, linear interpolation in torch), peak limit to 0.99.
Not RVC's: the 16 kHz input is made with svc_core.audio.resample (RVC decodes with ffmpeg), the content model is
svc_core's fairseq-free HubertModel (RVC: fairseq's), the random draws come through the NoiseSource seam
(TorchNoise.seeded(seed) per segment, RVC's draw order) so the output can be compared with our engine's, and the
float output is returned (RVC then truncates to int16).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from svc_core import audio as audio_io
from svc_core.noise import TorchNoise
from svc_core.options import DEFAULT_SEED
from svc_core.timing import StageTimes, timed_calls

SR16K = 16000  # HuBERT / f0 sample rate
WINDOW = 160  # samples per f0 frame (10 ms)
X_PAD, X_QUERY, X_CENTER, X_MAX = 1, 6, 38, 41  # RVC's CPU/fp32 windows, seconds
HIGHPASS_ORDER, HIGHPASS_HZ = 5, 48
INPUT_HEADROOM = 0.95  # vc_single: audio /= peak / 0.95 when that exceeds 1
PEAK = 0.99  # pipeline: output scaled down when its peak exceeds this
F0_MIN, F0_MAX = 50.0, 1100.0
PM_VOICING = 0.6  # parselmouth voicing_threshold
RMVPE_THRESHOLD = 0.03  # RVC's `thred`
RMVPE_FRAME_MULTIPLE = 32
RMVPE_RADIUS = 4  # bins each side of the peak
RMVPE_CENTS0, RMVPE_CENTS_STEP = 1997.3794084376191, 20.0
SEARCH_K = 8
HUBERT_LAYER = {"v1": 9, "v2": 12}
RMS_FLOOR = 1e-6


@dataclass(frozen=True)
class ReferenceOptions:
    """RVC's vc_single arguments (WebUI defaults, index_rate 0.75 as the issue's bench)."""

    f0_method: str = "rmvpe"
    f0_up_key: float = 0.0
    index_rate: float = 0.75
    filter_radius: int = 3
    rms_mix_rate: float = 0.25
    protect: float = 0.33
    speaker: int = 0
    seed: int = DEFAULT_SEED  # TorchNoise.seeded(seed) for every segment, as our recipe's default


class RvcReference:
    """Loads what RVC's VC.get_vc + load_hubert load; `convert` is vc_single + Pipeline.pipeline."""

    def __init__(self, voice_path: str | os.PathLike, hubert_path: str | os.PathLike,
                 index_path: Optional[str | os.PathLike] = None, rmvpe_path: Optional[str | os.PathLike] = None):
        from svc_core.encoders.contentvec import load_hubert_checkpoint
        from svc_core.rvc.checkpoint import read_rvc_checkpoint

        ckpt = read_rvc_checkpoint(voice_path)
        self.net = ckpt.build(posterior=False).float().eval()  # weight norm kept, as RVC
        self.hparams = ckpt.hparams
        self.tgt_sr = ckpt.hparams.sr
        self.version = ckpt.hparams.version
        self.hubert = load_hubert_checkpoint(hubert_path).float().eval()
        self.index_path = None if index_path is None else os.fspath(index_path)
        self.rmvpe_path = None if rmvpe_path is None else os.fspath(rmvpe_path)
        self.rmvpe = None  # RVC's Pipeline loads it on first use

    # ------------------------------------------------------------------ f0 (Pipeline.get_f0)
    def get_f0(self, x: np.ndarray, p_len: int, opts: ReferenceOptions) -> tuple[np.ndarray, np.ndarray]:
        """padded 16 kHz input float64 [N] -> (coarse int32 [F], Hz float64 [F]); F = p_len (pm), N//160+1 (rmvpe)."""
        if opts.f0_method == "pm":
            import parselmouth

            f0 = parselmouth.Sound(x, SR16K).to_pitch_ac(
                time_step=WINDOW / SR16K, voicing_threshold=PM_VOICING, pitch_floor=F0_MIN,
                pitch_ceiling=F0_MAX).selected_array["frequency"]
            pad = (p_len - len(f0) + 1) // 2
            if pad > 0 or p_len - len(f0) - pad > 0:
                f0 = np.pad(f0, [[pad, p_len - len(f0) - pad]], mode="constant")
        elif opts.f0_method == "rmvpe":
            f0 = self._rmvpe(x)
        else:
            raise ValueError(f"the RVC reference runs pm or rmvpe, not {opts.f0_method!r}")
        f0 = f0 * pow(2, opts.f0_up_key / 12)
        mel_min, mel_max = 1127 * np.log(1 + F0_MIN / 700), 1127 * np.log(1 + F0_MAX / 700)
        f0_mel = 1127 * np.log(1 + f0 / 700)
        voiced = f0_mel > 0
        f0_mel[voiced] = (f0_mel[voiced] - mel_min) * 254 / (mel_max - mel_min) + 1
        f0_mel[f0_mel <= 1] = 1
        f0_mel[f0_mel > 255] = 255
        return np.rint(f0_mel).astype(np.int32), f0.copy()

    def _rmvpe(self, x: np.ndarray) -> np.ndarray:
        """RVC's RMVPE.infer_from_audio: whole-input log-mel, one network call, numpy decoding."""
        from svc_core.f0.rmvpe import load_rmvpe_model, log_mel

        if self.rmvpe is None:
            self.rmvpe = load_rmvpe_model(self.rmvpe_path)
        mel = log_mel(torch.from_numpy(x).float())[None]  # [1, 128, T]
        n_frames = mel.shape[-1]
        n_pad = RMVPE_FRAME_MULTIPLE * ((n_frames - 1) // RMVPE_FRAME_MULTIPLE + 1) - n_frames
        with torch.no_grad():
            if n_pad > 0:
                mel = F.pad(mel, (0, n_pad), mode="constant")
            hidden = self.rmvpe(mel)[:, :n_frames]
        salience = hidden.squeeze(0).cpu().numpy()
        cents = _local_average_cents(salience, RMVPE_THRESHOLD)
        f0 = 10 * (2 ** (cents / 1200))
        f0[f0 == 10] = 0
        return f0

    # ------------------------------------------------------------------ one segment (Pipeline.vc)
    def vc(self, sid: torch.Tensor, audio0: np.ndarray, pitch: torch.Tensor, pitchf: torch.Tensor,
           index, big_npy: Optional[np.ndarray], opts: ReferenceOptions, times: StageTimes) -> np.ndarray:
        """padded segment float64 [N] -> model output float32 [N // 160 * hop] (padding included)."""
        with times.stage("encoder"):
            feats = torch.from_numpy(audio0).float().view(1, -1)
            with torch.no_grad():
                feats = self.hubert.extract_features(feats, output_layer=HUBERT_LAYER[self.version])
                if self.version == "v1":
                    feats = self.hubert.final_proj(feats)
        protecting = opts.protect < 0.5
        feats0 = feats.clone() if protecting else None
        if index is not None and big_npy is not None and opts.index_rate != 0:
            with times.stage("retrieval"):
                npy = feats[0].cpu().numpy()
                score, ix = index.search(npy, k=SEARCH_K)
                weight = np.square(1 / score)
                weight /= weight.sum(axis=1, keepdims=True)
                npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
                feats = torch.from_numpy(npy).unsqueeze(0) * opts.index_rate + (1 - opts.index_rate) * feats
        feats = F.interpolate(feats.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
        if protecting:
            feats0 = F.interpolate(feats0.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
        p_len = audio0.shape[0] // WINDOW
        if feats.shape[1] < p_len:
            p_len = feats.shape[1]
            pitch, pitchf = pitch[:, :p_len], pitchf[:, :p_len]
        if protecting:
            pitchff = pitchf.clone()
            pitchff[pitchf > 0] = 1
            pitchff[pitchf < 1] = opts.protect
            pitchff = pitchff.unsqueeze(-1)
            feats = (feats * pitchff + feats0 * (1 - pitchff)).to(feats0.dtype)
        lengths = torch.tensor([p_len]).long()
        with times.stage("synthesizer"), timed_calls(self.net.dec, times, "vocoder", of="synthesizer"), \
                torch.no_grad():
            out = self.net.infer(feats, lengths, pitch, pitchf, sid, TorchNoise.seeded(opts.seed))
        return out.o[0, 0].data.cpu().float().numpy()

    # ------------------------------------------------------------------ the whole conversion
    def convert(self, wav: np.ndarray, sr: int, opts: ReferenceOptions, times: StageTimes) -> np.ndarray:
        """float audio [N] at sr -> float32 [M] at the model rate (RVC's int16 step not applied)."""
        with times.stage("resample"):
            audio = audio_io.resample(audio_io.to_mono_float(wav), int(sr), SR16K)
            audio_max = np.abs(audio).max() / INPUT_HEADROOM
            if audio_max > 1:
                audio = audio / audio_max
        times.audio_seconds += len(audio) / SR16K
        index = big_npy = None
        if self.index_path and opts.index_rate != 0:
            with times.stage("retrieval"):
                import faiss

                index = faiss.read_index(self.index_path)
                big_npy = index.reconstruct_n(0, index.ntotal)
        with times.stage("highpass"):
            from scipy import signal

            bh, ah = signal.butter(N=HIGHPASS_ORDER, Wn=HIGHPASS_HZ, btype="high", fs=SR16K)
            audio = signal.filtfilt(bh, ah, audio)
            opt_ts = _cut_points(audio)
            t_pad = SR16K * X_PAD
            audio_pad = np.pad(audio, (t_pad, t_pad), mode="reflect")
        p_len = audio_pad.shape[0] // WINDOW
        sid = torch.tensor(opts.speaker).unsqueeze(0).long()
        with times.stage("f0"):
            pitch, pitchf = self.get_f0(audio_pad, p_len, opts)
            pitch = torch.tensor(pitch[:p_len]).unsqueeze(0).long()
            pitchf = torch.tensor(pitchf[:p_len].astype(np.float32)).unsqueeze(0).float()
        t_pad_tgt, pieces, s, t = self.tgt_sr * X_PAD, [], 0, None
        for t in opt_ts:
            t = t // WINDOW * WINDOW
            piece = self.vc(sid, audio_pad[s: t + 2 * t_pad + WINDOW], pitch[:, s // WINDOW: (t + 2 * t_pad) // WINDOW],
                            pitchf[:, s // WINDOW: (t + 2 * t_pad) // WINDOW], index, big_npy, opts, times)
            pieces.append(piece[t_pad_tgt:-t_pad_tgt])
            s = t
        last = slice(t // WINDOW, None) if t is not None else slice(None)
        start = t if t is not None else 0
        piece = self.vc(sid, audio_pad[start:], pitch[:, last], pitchf[:, last], index, big_npy, opts, times)
        pieces.append(piece[t_pad_tgt:-t_pad_tgt])
        out = np.concatenate(pieces)
        if opts.rms_mix_rate != 1:
            with times.stage("loudness"):
                out = change_rms(audio, SR16K, out, self.tgt_sr, opts.rms_mix_rate)
        audio_max = np.abs(out).max() / PEAK
        return (out / audio_max if audio_max > 1 else out).astype(np.float32)


def _cut_points(audio: np.ndarray) -> list[int]:
    """RVC's split of long inputs: near every 38 s mark, the quietest 10 ms (sum of |x| over 160 samples)."""
    audio_pad = np.pad(audio, (WINDOW // 2, WINDOW // 2), mode="reflect")
    opt_ts: list[int] = []
    if audio_pad.shape[0] > SR16K * X_MAX:
        audio_sum = np.zeros_like(audio)
        for i in range(WINDOW):
            audio_sum += np.abs(audio_pad[i: i - WINDOW])
        t_query, t_center = SR16K * X_QUERY, SR16K * X_CENTER
        for t in range(t_center, audio.shape[0], t_center):
            window = audio_sum[t - t_query: t + t_query]
            opt_ts.append(t - t_query + int(np.where(window == window.min())[0][0]))
    return opt_ts


def _local_average_cents(salience: np.ndarray, threshold: float) -> np.ndarray:
    """RVC's RMVPE decoding: per frame the salience-weighted mean cents over the peak +-4 bins (a Python loop over
    frames, as RVC), 0 where the peak salience <= threshold. salience [T, 360] -> cents [T]."""
    cents_mapping = RMVPE_CENTS_STEP * np.arange(salience.shape[1]) + RMVPE_CENTS0
    cents_mapping = np.pad(cents_mapping, (RMVPE_RADIUS, RMVPE_RADIUS))
    center = np.argmax(salience, axis=1)
    salience = np.pad(salience, ((0, 0), (RMVPE_RADIUS, RMVPE_RADIUS)))
    center += RMVPE_RADIUS
    starts, ends = center - RMVPE_RADIUS, center + RMVPE_RADIUS + 1
    todo_salience, todo_cents = [], []
    for idx in range(salience.shape[0]):
        todo_salience.append(salience[:, starts[idx]: ends[idx]][idx])
        todo_cents.append(cents_mapping[starts[idx]: ends[idx]])
    todo_salience, todo_cents = np.array(todo_salience), np.array(todo_cents)
    devided = np.sum(todo_salience * todo_cents, 1) / np.sum(todo_salience, 1)
    devided[np.max(salience, axis=1) <= threshold] = 0
    return devided


def change_rms(data1: np.ndarray, sr1: int, data2: np.ndarray, sr2: int, rate: float) -> np.ndarray:
    """RVC's loudness mix: output * rms_in^(1 - rate) * rms_out^(rate - 1), RMS over 0.5 s frames, linear
    interpolation to the output's length. data1 input [N] at sr1, data2 output [M] at sr2 -> [M]."""
    import librosa

    rms1 = librosa.feature.rms(y=data1, frame_length=sr1 // 2 * 2, hop_length=sr1 // 2)
    rms2 = librosa.feature.rms(y=data2, frame_length=sr2 // 2 * 2, hop_length=sr2 // 2)
    rms1 = F.interpolate(torch.from_numpy(rms1).unsqueeze(0), size=data2.shape[0], mode="linear").squeeze()
    rms2 = F.interpolate(torch.from_numpy(rms2).unsqueeze(0), size=data2.shape[0], mode="linear").squeeze()
    rms2 = torch.max(rms2, torch.zeros_like(rms2) + RMS_FLOOR)
    data2 *= (torch.pow(rms1, torch.tensor(1 - rate)) * torch.pow(rms2, torch.tensor(rate - 1))).numpy()
    return data2
