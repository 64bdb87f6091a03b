"""RVC voices on ONNX Runtime: `RvcOnnxVoice`, the same face as the torch `svc_core.rvc.RvcVoice`.

    voice = RvcOnnxVoice("voice.onnx")            # our export (rvc_export.py) or a file RVC's exporter wrote
    audio = voice.synthesize(phone, pitch, nsff0, torch.tensor([0]), TorchNoise.seeded(1), chunk_frames=512)

* Our export with its split pair (`voice.prior.onnx` + `voice.dec.onnx`): the prior runs once, the vocoder in
  chunks of `chunk_frames` frames (plus its receptive field each side): working memory bounded by the chunk;
  speaker mixes (FloatTensor [n_spk] weights) work.
* A file in RVC's layout (ours without the pair, or RVC's own export): one call per input, its random nodes
  made inputs (rvc_layout.with_noise_inputs); one speaker id only. hparams come from our manifest, else are
  probed: content width from phone's shape, pitch from the input names, hop from a short run (sample rate from
  the hop), speakers and gin from the embedding table, inter from rnd's shape (rvc_layout.py says what stays
  unknown).

The random draws are the torch voice's, in its order, from the NoiseSource given: randn [1, inter, T] (prior,
times 0.66666), then for pitch models rand [1, 1, 1] (initial phase; zeroed in RVC's graph) and randn
[1, T * hop, 1] (NSF noise). Same noise in, same audio out as the torch voice (float32, ~1e-5).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import ModelError, OptionError
from ..noise import NoiseSource
from .export import find_manifest, load_proto
from .rvc_export import KIND, MIN_FRAMES, PRIOR_NOISE_SCALE
from .rvc_graph import graph_input_names
from .rvc_layout import NOISE_INPUT, PHASE_INPUT, RATE_NAMES, rate_of_hop, read_layout, with_noise_inputs
from .runtime import SessionInfo, make_session
from .split_export import decode_in_chunks, split_paths

PROBE_FRAMES = 32  # frames of the hop-probing run of a file without manifest
PROBED_SPEAKERS = ["0"]  # a file without manifest: as RVC's small models, one speaker, id 0 (other rows by number)


def is_rvc_onnx(onnx_path: str | os.PathLike) -> bool:
    """Whether an .onnx file is an RVC voice: our RVC export (manifest kind), or a graph with RVC's exporter inputs
    (phone, ds, rnd). False for other files, unreadable ones included (their own loader says what is wrong)."""
    from ..errors import SvcError
    from .rvc_layout import REQUIRED

    try:
        manifest = find_manifest(onnx_path)
        if manifest is not None:
            return manifest.get("kind") == KIND
        graph = load_proto(onnx_path).graph
    except (SvcError, ValueError, OSError):
        return False
    return set(REQUIRED) <= {v.name for v in graph.input}


class SplitRunner:
    """Prior session + chunked decoder session of our split export."""

    def __init__(self, prior, decoder, has_f0: bool, hop: int, sampling_rate: float, context: int) -> None:
        self.prior, self.decoder = prior, decoder
        self.has_f0, self.hop, self.sampling_rate, self.context = has_f0, hop, sampling_rate, context

    def run(self, feed: dict[str, np.ndarray], f0: Optional[np.ndarray], noise: Optional[np.ndarray],
            chunk_frames: int, span: Optional[tuple[int, int]] = None) -> np.ndarray:
        """feed: the prior's inputs; f0 [1, T] Hz and noise [1, T * hop, 1] (pitch models) -> audio [1, 1, samples]
        of span (default all frames)."""
        z, g = self.prior.run(["z", "g"], feed)
        frames = z.shape[-1]
        f0 = f0 if f0 is not None else np.zeros((1, frames), dtype=np.float32)

        def decode(z_part, f0_part, g_part, phase0, offset):
            part = {"z": z_part, "g": g_part}
            if self.has_f0:
                start = int(offset[0])
                part.update(f0=f0_part, phase0=phase0,
                            noise=np.ascontiguousarray(noise[:, start:start + z_part.shape[-1] * self.hop]))
            return self.decoder.run(["audio"], part)[0]

        return decode_in_chunks(decode, z, f0, g, self.hop, self.sampling_rate, self.context, chunk_frames, span)


def _array(x: Any, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x), dtype=dtype)


class RvcOnnxVoice:
    """An exported RVC voice on ONNX Runtime (module docstring). device "cpu" | "cuda" | "auto"; threads None =
    physical cores. Attributes as RvcVoice: family, config, hparams, has_f0, n_speakers, meta."""

    family = "rvc"
    backend = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, device: str = "cpu", threads: Optional[int] = None) -> None:
        from ..rvc.hparams import RvcHParams

        self.onnx_path = Path(onnx_path)
        self._device, self._threads = device, threads
        try:
            manifest = find_manifest(self.onnx_path)
        except ValueError as err:  # the sidecar <file>.json is not JSON
            raise ModelError(f"The manifest of '{self.onnx_path.name}' ({self.onnx_path.name}.json) is not readable "
                             f"JSON ({err}); delete it to run the file by its graph alone, or export again.") from err
        if manifest is not None and manifest.get("kind") != KIND:
            raise ModelError(f"'{self.onnx_path.name}' is an svc-studio export of a {manifest.get('kind')}, not of "
                             "an RVC voice" + (": open it with svc_core.onnx.OnnxSvc." if manifest.get("kind") ==
                                               "synthesizer" else "."))
        self.split: Optional[SplitRunner] = None
        self._session = None
        if manifest is not None:
            self.manifest = manifest
            try:
                self.hparams = RvcHParams.from_config_list(manifest["rvc_config"], manifest["version"],
                                                           bool(manifest["f0"]))
                self.n_speakers = int(manifest["n_speakers"])
                speakers = sorted(manifest["speakers"], key=manifest["speakers"].get) or None
            except (KeyError, TypeError, ValueError) as err:
                raise ModelError(f"The svc-studio manifest of '{self.onnx_path.name}' is incomplete or damaged "
                                 f"({type(err).__name__}: {err}); export the .pth again.") from err
            self.meta = {**manifest.get("meta", {}), "onnx": "svc-studio export"}
            paths = split_paths(self.onnx_path)
            if manifest.get("split") and all(p.is_file() for p in paths.values()):
                # the prior runs once per input and its attention grows with T^2: no arena keeping its peak
                prior, self.session_info = make_session(paths["prior"], device, threads, memory_arena=False)
                decoder, _ = make_session(paths["decoder"], device, threads)
                self.split = SplitRunner(prior, decoder, self.hparams.f0, self.hparams.hop_length,
                                         float(self.hparams.sr), int(manifest["split"]["context_frames"]))
            else:
                self._open_one_shot()
        else:
            self._open_one_shot()
            self.hparams, speakers = self._probe(), PROBED_SPEAKERS
            self.manifest = None
        self.config = self.hparams.svc_config(speakers, source=f"{self.onnx_path.name}")

    # ------------------------------------------------------------------ loading
    def _open_one_shot(self) -> None:
        proto = load_proto(self.onnx_path)
        self.layout = read_layout(self.onnx_path, proto)
        model, self._added = with_noise_inputs(proto)
        self._session, self.session_info = make_session(self.onnx_path, self._device, self._threads,
                                                        model_bytes=model, memory_arena=False)
        self._output = self.layout.output

    def _probe(self) -> Any:
        """hparams of a file without manifest (module docstring); meta says which were read and which assumed."""
        layout = self.layout
        if layout.inter_channels is None or layout.n_speakers is None:
            raise ModelError(f"'{self.onnx_path.name}' has RVC's interface but its prior noise width or speaker "
                             "table cannot be read from the graph; export the .pth with `python -m svc_core "
                             "export-onnx` instead.")
        self.n_speakers = int(layout.n_speakers)
        probe = self._run_one_shot(np.zeros((1, PROBE_FRAMES, layout.content_dim), np.float32),
                                   np.full((1, PROBE_FRAMES), 100, np.int64) if layout.has_f0 else None,
                                   np.full((1, PROBE_FRAMES), 220.0, np.float32) if layout.has_f0 else None,
                                   0, np.zeros((1, layout.inter_channels, PROBE_FRAMES), np.float32), None)
        hop = probe.shape[-1] // PROBE_FRAMES
        if probe.shape[-1] != hop * PROBE_FRAMES:
            raise ModelError(f"'{self.onnx_path.name}' gave {probe.shape[-1]} samples for {PROBE_FRAMES} frames, "
                             "not a whole number per frame.")
        rate = rate_of_hop(hop, self.onnx_path)
        from ..rvc.hparams import preset

        hp = preset(version=layout.version, sr=RATE_NAMES[rate], f0=layout.has_f0,
                                inter_channels=layout.inter_channels, gin_channels=layout.gin_channels,
                                spk_embed_dim=layout.n_speakers)
        if hp.hop_length != hop:
            raise ModelError(f"'{self.onnx_path.name}' makes {hop} samples per frame but RVC's {layout.version} "
                             f"{RATE_NAMES[rate]} config has hop {hp.hop_length}.")
        self.meta = {"kind": "rvc-onnx", "onnx": "RVC-layout file without manifest",
                     "probed": {"content_dim": layout.content_dim, "f0": layout.has_f0, "hop": hop,
                                "sample_rate": rate, "inter_channels": layout.inter_channels,
                                "speakers": layout.n_speakers, "gin_channels": layout.gin_channels},
                     "assumed": f"the other constructor arguments are RVC's {layout.version} {RATE_NAMES[rate]} "
                                "preset (descriptive only); one speaker named '0' as RVC trains (the other rows "
                                "of the table stay reachable by id)",
                     "random_nodes": list(layout.random_ops)}
        return hp

    # ------------------------------------------------------------------ properties
    @property
    def has_f0(self) -> bool:
        return bool(self.hparams.f0)

    @property
    def sample_rate(self) -> int:
        return int(self.hparams.sr)

    @property
    def hop_length(self) -> int:
        return int(self.hparams.hop_length)

    # ------------------------------------------------------------------ running
    def _run_one_shot(self, phone: np.ndarray, pitch: Optional[np.ndarray], nsff0: Optional[np.ndarray],
                      speaker: int, rnd: np.ndarray, noise: Optional[np.ndarray],
                      phase: Optional[np.ndarray] = None) -> np.ndarray:
        frames = phone.shape[1]
        feed = {"phone": phone, "phone_lengths": np.array([frames], np.int64),
                "ds": np.array([speaker], np.int64), "rnd": rnd}
        if pitch is not None:
            feed.update(pitch=pitch, pitchf=nsff0)
        if NOISE_INPUT in self._added:  # None (probing, hop unknown): a zero [1, 1, 1] broadcasts in the graph
            feed[NOISE_INPUT] = noise if noise is not None else np.zeros((1, 1, 1), np.float32)
        if PHASE_INPUT in self._added:
            feed[PHASE_INPUT] = phase if phase is not None else np.zeros((1, 1, 1), np.float32)
        return self._session.run([self._output], feed)[0]

    def _speaker(self, speaker: Any) -> tuple[Optional[int], np.ndarray]:
        """LongTensor [1] id | FloatTensor [n_spk] (or [T, n_spk], rows averaged: RVC's g is global) weights,
        normalised to sum 1 as RvcSynthesizer.speaker_embedding does -> (id or None, weights [1, n_spk])."""
        t = torch.as_tensor(speaker)
        if t.is_floating_point():
            t = t.detach().float().cpu()
            weights = (t.mean(dim=0) if t.dim() == 2 else t.reshape(-1)).numpy()
            if weights.shape[0] != self.n_speakers:
                raise OptionError(f"Speaker mix has {weights.shape[0]} weights; this voice has {self.n_speakers} "
                                  "speakers.")
            if (weights < 0).any() or weights.sum() <= 0:
                raise OptionError("Speaker mix weights must be >= 0 and not all zero.")
            weights = (torch.from_numpy(weights) / float(weights.sum())).numpy()  # as torch: weights / total
            hot = np.flatnonzero(weights)
            sid = int(hot[0]) if hot.size == 1 and weights[hot[0]] == 1.0 else None
            return sid, weights[None].astype(np.float32)
        sid = int(t.reshape(-1)[0])
        if not 0 <= sid < self.n_speakers:
            raise OptionError(f"Speaker id {sid} is outside this voice's 0..{self.n_speakers - 1}.")
        weights = np.zeros((1, self.n_speakers), np.float32)
        weights[0, sid] = 1.0
        return sid, weights

    def synthesize(self, phone: Any, pitch: Any, nsff0: Any, speaker: Any, noise: NoiseSource,
                   chunk_frames: int = 0, span: Optional[tuple[int, int]] = None,
                   vocoder_dtype: Optional[torch.dtype] = None) -> np.ndarray:
        """phone [1, T, C], pitch [1, T] long and nsff0 [1, T] Hz (None for no-pitch voices), speaker (LongTensor
        [1] | FloatTensor [n_spk] mix weights), noise: the draws -> np.float32 [T * hop] (or span (start, stop)'s
        frames). chunk_frames > 0 decodes in chunks (split export; a one-shot file ignores it)."""
        if vocoder_dtype not in (None, torch.float32):
            raise OptionError(f"vocoder dtype {vocoder_dtype} is a torch-backend option; ONNX Runtime runs this "
                              "voice in float32.")
        phone = _array(phone, np.float32)
        if phone.ndim != 3 or phone.shape[0] != 1 or phone.shape[2] != self.hparams.content_dim:
            raise OptionError(f"phone must be [1, T, {self.hparams.content_dim}] ({self.hparams.version} content "
                              f"features), got {list(phone.shape)}.")
        frames = phone.shape[1]
        if self.has_f0 and (pitch is None or nsff0 is None):
            raise OptionError("This RVC voice is a pitch model: give pitch and nsff0.")
        pitch = _array(pitch, np.int64) if self.has_f0 else None
        nsff0 = _array(nsff0, np.float32) if self.has_f0 else None
        if self.has_f0 and (pitch.shape != (1, frames) or nsff0.shape != (1, frames)):
            raise OptionError(f"pitch and nsff0 must be [1, {frames}], got {list(pitch.shape)}, {list(nsff0.shape)}.")
        if frames < MIN_FRAMES:
            raise OptionError(f"An RVC ONNX voice needs at least {MIN_FRAMES} frame(s) of input; got {frames}.")
        start, stop = span if span is not None else (0, frames)
        if not 0 <= start < stop <= frames:
            raise OptionError(f"span {span} is outside 0..{frames}.")
        sid, weights = self._speaker(speaker)
        rnd = (noise.randn([1, self.hparams.inter_channels, frames]) * PRIOR_NOISE_SCALE).numpy().astype(np.float32)
        phase = src = None
        if self.has_f0:
            phase = noise.rand([1, 1, 1]).numpy().astype(np.float32)
            src = noise.randn([1, frames * self.hop_length, 1]).numpy().astype(np.float32)
        if self.split is not None:
            feed = {"phone": phone, "phone_lengths": np.array([frames], np.int64), "speaker": weights, "rnd": rnd}
            if self.has_f0:
                feed["pitch"] = pitch
            audio = self.split.run(feed, nsff0, src, int(chunk_frames), (start, stop))
        else:
            if sid is None:
                raise OptionError("This ONNX file takes one speaker id (RVC's interface); speaker mixes need the "
                                  "split export (export-onnx without --no-split).")
            audio = self._run_one_shot(phone, pitch, nsff0, sid, rnd, src, phase)
            audio = audio[..., start * self.hop_length: stop * self.hop_length]
        return np.ascontiguousarray(audio.reshape(-1), dtype=np.float32)


__all__ = ["RvcOnnxVoice", "SplitRunner", "is_rvc_onnx"]
