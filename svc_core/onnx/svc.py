"""Backends that share `Svc`'s pipeline (slicing, f0, encoder, retrieval, mixing, caching) and differ only in
the synthesizer call:

* `GraphSvc`: torch eager running `SynthesizerGraph` -- the exact computation of the ONNX export (deterministic
  NSF source, see graph.py). It is the torch reference the ONNX backend is compared with.
* `OnnxSvc`: ONNX Runtime running an exported file (`python -m svc_core export-onnx`). It needs no torch
  synthesizer: the config, speakers and variant come from the export's manifest. When the export has its split
  pair (`model.prior.onnx` + `model.dec.onnx`, split_export.py) the vocoder runs in chunks of
  `decoder_chunk_frames` like the torch backend (bounded memory); otherwise the one-shot upstream file runs.
  With `model.dec.int8.onnx` beside them (vocoder_int8.py), vocoder_precision="int8" decodes with it.
  A diffusion model given to it (shallow diffusion / only-diffusion's networks) runs on ONNX Runtime too
  (diffusion_stage.py: exported on first use into `diffusion_export_dir`, default the synthesizer file's folder);
  diffusion_backend="torch" keeps it in torch.

    svc = OnnxSvc("model.onnx", encoder_path="pretrain/checkpoint_best_legacy_500.pt")
    print(svc.session_info.describe())      # e.g. onnxruntime CPUExecutionProvider (intra-op threads 2, ...)
    out = svc.slice_inference(wav, sr, "nyaru", transpose=3, f0_predictor="pm")
"""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import numpy as np
import torch

from ..config import config_from_dict, load_config
from ..encoders import ContentEncoder
from ..errors import ModelError, OptionError
from ..options import ConvertOptions
from ..pipeline import Svc
from ..timing import StageTimes
from .export import MIN_FRAMES, find_manifest
from .graph import SynthesizerGraph
from .runtime import SessionInfo, make_session
from .split_export import (DECODER_INPUTS, DecodeFn, decode_in_chunks, int8_decoder_path, session_decoder, split_paths,
                           torch_decoder)
from .upstream_file import UPSTREAM_FORMAT, upstream_manifest
from ..models.voice_model import VoiceModel


def prior_noise(channels: int, frames: int, noise_scale: float, seed: int) -> torch.Tensor:
    """randn(1, channels, frames) * noise_scale, the same numbers `SynthesizerTrn.infer` draws for its prior
    after re-seeding with `seed` (its first draw, on CPU)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, channels, frames, generator=gen) * float(noise_scale)


class GraphSvc(Svc):
    """`Svc` whose synthesizer step is the export graph run in torch (speaker_mix None: as upstream's export,
    the mix variant when the config lists 2+ speakers)."""

    backend = "torch-graph"
    _decode_override: Optional[DecodeFn] = None  # set by decoding_with

    def __init__(self, model_path: str | os.PathLike, config_path: str | os.PathLike, *args: Any,
                 speaker_mix: Optional[bool] = None, **kwargs: Any) -> None:
        super().__init__(model_path, config_path, *args, **kwargs)
        mix = len(self.config.spk) >= 2 if speaker_mix is None else bool(speaker_mix)
        self.graph = SynthesizerGraph(self.model, speaker_mix=mix).eval()
        self.speaker_mix = mix
        self.inter_channels = int(self.model.inter_channels)
        self.n_speakers = int(self.model.n_speakers)
        self.has_vol = getattr(self.model, "emb_vol", None) is not None

    # ------------------------------------------------------------------ graph inputs
    def graph_inputs(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor,
                     vol: Optional[torch.Tensor], opts: ConvertOptions) -> tuple[dict[str, np.ndarray], int]:
        """Pipeline tensors (c [1, S, T], f0/uv [1, T], g, vol) -> (the graph's named inputs, T).

        Pieces shorter than MIN_FRAMES are edge-padded to it (the caller trims the audio back to T * hop).
        """
        if opts.auto_predict_f0:
            raise OptionError("auto_predict_f0 is not available with the ONNX backend (upstream's export has no "
                              "f0 decoder); use the torch backend for it.")
        frames = int(f0.shape[1])
        pad = max(0, MIN_FRAMES - frames)
        c = c[0].T.contiguous()[None].float().cpu()  # [1, T, S]
        if pad:
            c = torch.cat([c, c[:, -1:].expand(1, pad, c.shape[2])], 1)
            f0, uv = (torch.cat([t, t[:, -1:].expand(1, pad)], 1) for t in (f0, uv))
            vol = None if vol is None else torch.cat([vol, vol[:, -1:].expand(1, pad)], 1)
        total = frames + pad
        inputs = {
            "c": c.numpy(),
            "f0": f0.float().cpu().numpy(),
            "mel2ph": np.arange(1, total + 1, dtype=np.int64)[None],
            "uv": uv.float().cpu().numpy(),
            "noise": prior_noise(self.inter_channels, total, opts.noise_scale, opts.seed).numpy(),
            "sid": self._sid(g.cpu(), total),
        }
        if self.has_vol:
            if vol is None:
                raise ModelError("This model has a volume embedding but no volume was computed.")
            inputs["vol"] = vol.float().cpu().numpy()
        return inputs, frames

    def _sid(self, g: torch.Tensor, frames: int) -> np.ndarray:
        if g.is_floating_point():  # mix matrix [T, n_spk]
            if not self.speaker_mix:
                raise OptionError("This ONNX export has no speaker mixing (sid is one id); choose one speaker or "
                                  "re-export with --speaker-mix on.")
            if g.shape[0] < frames:
                g = torch.cat([g, g[-1:].expand(frames - g.shape[0], g.shape[1])], 0)
            return g.float().numpy()
        sid = int(g.flatten()[0])
        if not self.speaker_mix:
            return np.array([sid], dtype=np.int64)
        one_hot = np.zeros((frames, self.n_speakers), dtype=np.float32)
        one_hot[:, sid] = 1.0
        return one_hot

    def vocoder_dtype(self, opts: ConvertOptions) -> None:
        if opts.vocoder_precision != "fp32":
            raise OptionError(f"vocoder_precision {opts.vocoder_precision} is not available on the torch export "
                              "graph (float32 only); bf16 / fp16 are the torch backend's, int8 the ONNX backend's.")
        return None

    def graph_input_names(self) -> list[str]:
        """The graph's inputs in the order of SynthesizerGraph.forward / .prior."""
        return ["c", "f0", "mel2ph", "uv", "noise", "sid"] + (["vol"] if self.has_vol else [])

    def run_graph(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Named inputs -> audio [1, 1, T * hop] (torch eager)."""
        names = self.graph_input_names()
        with torch.inference_mode():
            out = self.graph(*(torch.from_numpy(np.asarray(inputs[n])) for n in names))
        return out.numpy()

    def run_prior(self, inputs: Mapping[str, np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Named inputs -> (z [1, Z, T], g [1, G, 1|T]) for chunked decoding (torch eager)."""
        names = self.graph_input_names()
        with torch.inference_mode():
            z, g = self.graph.prior(*(torch.from_numpy(np.asarray(inputs[n])) for n in names))
        return z.numpy(), g.numpy()

    def vocoder_context(self) -> int:
        """Frames of context the chunked vocoder decodes on each side of a chunk (its receptive field)."""
        return int(self.model.dec.context_frames())

    def chunk_decoder(self, opts: Optional[ConvertOptions] = None) -> tuple[DecodeFn, int]:
        """(chunk decode function, context frames) of the vocoder for `opts`."""
        return torch_decoder(self.graph), self.vocoder_context()

    @contextmanager
    def decoding_with(self, decode: DecodeFn) -> Iterator[None]:
        """While open, the chunked vocoder calls `decode(z, f0, g, phase0, offset) -> audio [1, 1, frames * hop]`
        instead of the model's vocoder (int8 calibration records what the vocoder is fed this way)."""
        self._decode_override = decode
        try:
            yield
        finally:
            self._decode_override = None

    @contextmanager
    def feeding_decoder(self, decode: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Iterator[None]:
        """`decoding_with` for a function of the .dec.onnx inputs by name ({"z", "f0", "g", "phase0", "offset"}):
        the form vocoder_int8 records and replays for every voice kind (RvcOnnxVoice has the same method)."""
        with self.decoding_with(lambda *args: decode(dict(zip(DECODER_INPUTS, args)))):
            yield

    def _synthesize(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor,
                    vol: Optional[torch.Tensor], opts: ConvertOptions,
                    span: Optional[tuple[int, int]] = None, times: Optional[StageTimes] = None) -> np.ndarray:
        """The whole graph at once, or (opts.decoder_chunk_frames > 0 and the backend can) the prior followed by
        the vocoder in chunks of that many frames: the same samples up to float rounding, bounded memory. span
        (start, stop): only those frames' audio (the chunked vocoder decodes nothing else). times: the chunked
        vocoder is timed as its own stage, "vocoder" (the one-shot graph is all "synthesizer")."""
        inputs, frames = self.graph_inputs(c, f0, uv, g, vol, opts)
        start, stop = span if span is not None else (0, frames)
        chunk = self.chunk_frames(opts)
        prior = self.run_prior(inputs) if chunk > 0 else None
        if prior is None:
            audio = self.run_graph(inputs)[..., start * self.hop_length:]
        else:
            if self._decode_override is not None:
                decode, context = self._decode_override, self.vocoder_context()
            else:
                decode, context = self.chunk_decoder(opts)
            with times.part("vocoder", of="synthesizer") if times is not None else nullcontext():
                audio = decode_in_chunks(decode, prior[0], inputs["f0"], prior[1], self.hop_length,
                                         float(self.sample_rate), context, chunk, (start, stop))
        return np.ascontiguousarray(audio[0, 0, : (stop - start) * self.hop_length], dtype=np.float32)


class _ExportedModel(VoiceModel):
    """What `Svc` reads from its model, for an exported file: config, speaker table width, vol flag."""

    def __init__(self, manifest: Mapping[str, Any], config) -> None:
        self.config = config
        self.manifest = dict(manifest)
        self.inter_channels = int(manifest["inter_channels"])
        self.n_speakers = int(manifest["n_speakers"])
        self.emb_g = torch.nn.Module()
        self.emb_g.weight = torch.empty(self.n_speakers, 0)  # only its row count is used (speaker mixes)
        self.emb_vol = True if manifest.get("vol_embedding") else None


DIFFUSION_BACKENDS = ("onnx", "torch")  # where OnnxSvc runs a diffusion model's denoiser and mel vocoder


class OnnxSvc(GraphSvc):
    """`Svc` on ONNX Runtime: device "auto" (CUDA when onnxruntime has it, else CPU), "cpu" or "cuda";
    threads None = physical cores. `session_info` says which provider and threads were used."""

    backend = "onnxruntime"
    DECODER_CHUNK_FRAMES = 512  # ONNX Runtime's vocoder is ~7 % faster per frame with 512 than 256 (bench/README)

    def __init__(self, onnx_path: str | os.PathLike, config_path: Optional[str | os.PathLike] = None,
                 encoder_path: Optional[str] = None, cluster_path: Optional[str] = None, device: str = "auto",
                 encoder: Union[str, ContentEncoder, None] = None, f0_weights: Optional[Mapping[str, str]] = None,
                 threads: Optional[int] = None, diffusion_backend: str = "onnx",
                 diffusion_export_dir: Optional[str | os.PathLike] = None, **diffusion: Any) -> None:
        """diffusion: Svc's diffusion_model_path / diffusion_config_path / vocoder_path; diffusion_backend "onnx"
        (its denoiser and mel vocoder exported once into diffusion_export_dir, default beside onnx_path) or
        "torch"."""
        if diffusion_backend not in DIFFUSION_BACKENDS:
            raise OptionError(f"Unknown diffusion_backend '{diffusion_backend}'; choose one of: "
                              f"{', '.join(DIFFUSION_BACKENDS)}.")
        manifest = find_manifest(onnx_path)  # an upstream export has none: derived from its graph and config.json
        self.manifest = manifest if manifest is not None else upstream_manifest(onnx_path, config_path)
        if self.manifest.get("kind") != "synthesizer":
            raise ModelError(f"'{os.path.basename(os.fspath(onnx_path))}' is an exported {self.manifest.get('kind')},"
                             " not a synthesizer.")
        self._onnx_device, self._threads = device, threads
        self.onnx_path = os.fspath(onnx_path)
        self._decoder_session = self._int8_session = None  # vocoder sessions, opened on first use
        torch_device = "cuda" if str(device).startswith("cuda") and torch.cuda.is_available() else "cpu"
        Svc.__init__(self, onnx_path, config_path or "", encoder_path=encoder_path, cluster_path=cluster_path,
                     device=torch_device, encoder=encoder, f0_weights=f0_weights, **diffusion)
        self.speaker_mix = bool(self.manifest["speaker_mix"])
        self.inter_channels = self.model.inter_channels
        self.n_speakers = self.model.n_speakers
        self.has_vol = self.model.emb_vol is not None
        self._diffusion_backend = diffusion_backend
        self._diffusion_export_dir = Path(diffusion_export_dir) if diffusion_export_dir is not None \
            else Path(self.onnx_path).parent
        if self.diffusion is not None and diffusion_backend == "onnx":
            from .diffusion_stage import OnnxDiffusionStage

            with self.load_times.stage("load diffusion onnx"):
                self.diffusion = OnnxDiffusionStage.from_stage(self.diffusion, self._diffusion_export_dir, device,
                                                               threads)

    def enhancer(self):
        """The NSF-HiFiGAN enhancer, its vocoder on ONNX Runtime too unless diffusion_backend is "torch"."""
        fresh = self._enhancer is None
        enhancer = super().enhancer()
        if fresh and self._diffusion_backend == "onnx":
            from .diffusion_stage import vocoder_to_onnx

            vocoder_to_onnx(enhancer.vocoder, self._diffusion_export_dir, self._onnx_device, self._threads)
        return enhancer

    def _load_model(self, model_path: str, config_path: str, device: str) -> _ExportedModel:
        if config_path and self.manifest.get("format") != UPSTREAM_FORMAT:
            config = load_config(config_path)
        else:  # ours: the manifest's copy; upstream's: the config.json or descriptor read for its manifest
            config = config_from_dict(self.manifest["config"], source=f"{model_path} manifest")
        self.split = self.manifest.get("split")
        paths = split_paths(model_path)
        if self.split and all(p.is_file() for p in paths.values()):
            # chunked decoding: the one-shot file is only opened if a caller turns chunking off, and each vocoder
            # file (float32, int8) when a conversion first uses it
            self.session = None
            self.prior_session, self.session_info = make_session(paths["prior"], self._onnx_device, self._threads)
            self.input_names = [i.name for i in self.prior_session.get_inputs()]
        else:
            self.split = None
            self.session, self.session_info = make_session(model_path, self._onnx_device, self._threads)
            self.input_names = [i.name for i in self.session.get_inputs()]
        return _ExportedModel(self.manifest, config)

    def run_graph(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.session is None:
            self.session, _ = make_session(self.onnx_path, self._onnx_device, self._threads)
        return self.session.run(["audio"], {n: inputs[n] for n in self.input_names})[0]

    def run_prior(self, inputs: Mapping[str, np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(z, g) from the prior file, or None when this export has no split pair (one-shot decoding)."""
        if not self.split:
            return None
        z, g = self.prior_session.run(["z", "g"], {n: inputs[n] for n in self.input_names})
        return z, g

    def vocoder_dtype(self, opts: ConvertOptions) -> None:
        """fp32, or int8 when this export has its int8 vocoder (vocoder_int8.py); anything else is refused."""
        if opts.vocoder_precision == "int8":
            if not self.split or opts.decoder_chunk_frames == 0:
                raise OptionError("The int8 vocoder runs in chunks: it needs the split export (model.prior.onnx + "
                                  "model.dec.onnx) and decoder_chunk_frames above 0.")
            if self.session_info.provider != "CPUExecutionProvider":
                raise OptionError(f"The int8 vocoder is for CPUs (int8 dot products); this voice runs on "
                                  f"{self.session_info.provider}, where fp32 is the fast choice.")
            if not self.int8_path.is_file():
                raise OptionError(f"This export has no int8 vocoder ({self.int8_path.name}); make it with `python -m "
                                  "svc_core export-onnx -m G.pth -c config.json -o model.onnx --int8-vocoder` (or "
                                  "pick it once in the web demo), or use vocoder_precision fp32.")
            return None
        if opts.vocoder_precision != "fp32":
            raise OptionError(f"vocoder_precision {opts.vocoder_precision} is a torch-backend option; ONNX Runtime "
                              "runs fp32 or (with an int8 export of the vocoder) int8.")
        return None

    @property
    def int8_path(self) -> Path:
        """Where this export's int8 vocoder is (or would be) written."""
        return int8_decoder_path(self.onnx_path)

    @property
    def decoder_session(self):
        """The ONNX Runtime session of the float32 vocoder (opened on first use: a voice that only ever decodes
        in int8 does not load it)."""
        if self._decoder_session is None:
            self._decoder_session, _ = make_session(split_paths(self.onnx_path)["decoder"], self._onnx_device,
                                                    self._threads)
        return self._decoder_session

    @decoder_session.setter
    def decoder_session(self, session) -> None:
        self._decoder_session = session

    def int8_session(self, reload: bool = False):
        """The ONNX Runtime session of the int8 vocoder (opened on first use)."""
        if reload or self._int8_session is None:
            self._int8_session, _ = make_session(self.int8_path, self._onnx_device, self._threads)
        return self._int8_session

    def vocoder_context(self) -> int:
        return int(self.split["context_frames"])

    def chunk_decoder(self, opts: Optional[ConvertOptions] = None) -> tuple[DecodeFn, int]:
        int8 = opts is not None and opts.vocoder_precision == "int8"
        session = self.int8_session() if int8 else self.decoder_session
        return session_decoder(session), self.vocoder_context()


__all__ = ["GraphSvc", "OnnxSvc", "SessionInfo", "prior_noise"]
