"""`python -m svc_core export-onnx -m G.pth -c config.json -o model.onnx [--speaker-mix auto|on|off]`, and
`python -m svc_core export-onnx --encoder vec768l12 [--encoder-path FILE] -o vec768l12.onnx [--int8]`, and
`python -m svc_core export-onnx --f0 rmvpe [--f0-path rmvpe.pt] -o rmvpe.onnx`; `--int8-vocoder [--calibration
CLIPS...]` adds the int8 vocoder to a synthesizer export (with -m/-c, or alone for an existing model.onnx);
`python -m svc_core export-onnx -m voice.pth -o voice.onnx [--int8-vocoder --encoder-path hubert_base.pt]` exports an
RVC voice (RVC's ONNX interface, rvc_export.py; --int8-vocoder calibrates through RVC's recipe);
`python -m svc_core export-onnx --diffusion model_*.pt --diffusion-config config.yaml [--vocoder PATH] -o
diffusion.onnx` writes the diffusion denoiser and (beside it, `<o stem>.vocoder.onnx`) the NSF-HiFiGAN mel vocoder."""
from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a G_*.pth (upstream's input/output names) or a content encoder "
                                           "to ONNX")
    p.add_argument("-m", "--model", default=None, help="generator checkpoint G_*.pth, or an RVC voice .pth "
                   "(RVC WebUI / Applio; needs no -c)")
    p.add_argument("-c", "--config", default=None, help="the model's config.json (RVC: only for a training G_*.pth "
                   "without its logs/<exp>/config.json beside it)")
    p.add_argument("--encoder", default=None,
                   help="export this content encoder instead (vec768l12, vec256l9, hubertsoft, phonevec256, ...)")
    p.add_argument("--encoder-path", default=None, help="its weights (default: ./pretrain or $SVC_PRETRAIN_DIR); with "
                   "--int8-vocoder: the voice's content encoder weights for the calibration conversions")
    p.add_argument("--f0", choices=("rmvpe",), default=None,
                   help="export this f0 predictor's network instead (use the file as `--rmvpe X.onnx`)")
    p.add_argument("--f0-path", default=None, help="its weights, e.g. rmvpe.pt (default: ./pretrain)")
    p.add_argument("--diffusion", default=None, metavar="MODEL_PT",
                   help="export a shallow-diffusion model instead (logs/44k/diffusion/model_*.pt): its denoiser to "
                        "<o> and its mel vocoder to <o stem>.vocoder.onnx")
    p.add_argument("--diffusion-config", default=None, metavar="YAML", help="the diffusion model's config.yaml")
    p.add_argument("--vocoder", default=None, help="with --diffusion: the NSF-HiFiGAN vocoder (its `model` file or "
                   "folder; default: the config's vocoder.ckpt, else pretrain/nsf_hifigan)")
    p.add_argument("--denoiser-condition", choices=("projected", "cond"), default="projected",
                   help="with --diffusion: the denoiser takes the per-layer condition projections, computed once per "
                        "run (projected, faster), or the condition itself, projected at every step (cond)")
    p.add_argument("--int8", action="store_true", help="encoder: also write <o>.int8.onnx (dynamic int8 "
                   "quantisation) and report its feature error")
    p.add_argument("--int8-vocoder", action="store_true",
                   help="also write <o>.dec.int8.onnx: the vocoder with int8 convolutions, calibrated on audio run "
                        "through the voice (2.3-2.8x faster vocoder on CPUs with int8 dot products; not bit-exact, "
                        "the measured SNR is printed). Use it with --vocoder-precision int8")
    p.add_argument("--calibration", nargs="+", default=None, metavar="AUDIO",
                   help="calibration clips or folders for --int8-vocoder (default: the repository's examples/)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write (its manifest goes to <o>.json)")
    p.add_argument("--speaker-mix", choices=("auto", "on", "off"), default="auto",
                   help="sid as float32 [frames, n_speakers] mix weights (auto: when the config has 2+ speakers, "
                        "as upstream's exporter) or int64 [1]")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (16 or newer; default 17)")
    p.add_argument("--no-split", action="store_true",
                   help="do not write <o>.prior.onnx + <o>.dec.onnx (the pair OnnxSvc uses for chunked, "
                        "memory-bounded vocoder decoding)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnx.checker + ONNX Runtime parity check")


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from .export import export_synthesizer, manifest_path

    if args.opset < 16:
        raise OptionError(f"--opset {args.opset} is too old; the graph needs opset 16 or newer.")
    _check_output(args)
    if args.encoder:
        return _run_encoder(args)
    if args.diffusion or args.diffusion_config:
        return _run_diffusion(args)
    if args.f0:
        from .f0_export import export_rmvpe

        m = export_rmvpe(args.f0_path, args.output, opset=args.opset)
        print(f"wrote {args.output}: RMVPE mel float32 [1, 128, T] -> salience float32 [1, T, 360]; ONNX Runtime vs "
              f"torch max abs {m['parity']['max_abs_diff']:.2e}; use it with --f0 rmvpe --rmvpe {args.output}")
        return 0
    if args.int8_vocoder and not args.model:
        return _run_int8_vocoder(args)
    if args.model and _is_rvc(args.model):
        return _run_rvc(args)
    if not (args.model and args.config):
        raise OptionError("export-onnx needs -m G_*.pth and -c config.json (or --encoder NAME for an encoder).")
    mix = {"auto": None, "on": True, "off": False}[args.speaker_mix]
    manifest = export_synthesizer(args.model, args.config, args.output, speaker_mix=mix, opset=args.opset,
                                  verify=not args.no_verify, split=not args.no_split)
    inputs = ", ".join(f"{n} {v['dtype']} {v['shape']}" for n, v in manifest["inputs"].items())
    print(f"wrote {args.output} (opset {manifest['opset']}, {'speaker-mix' if manifest['speaker_mix'] else 'one speaker id'})")
    print(f"inputs: {inputs}")
    print(f"output: audio float32 {manifest['outputs']['audio']['shape']}")
    _print_checks(manifest)
    print(f"manifest: {manifest_path(args.output)} (checkpoint sha256 {manifest['source_checkpoint']['sha256'][:12]}...)")
    descriptor = manifest["moevoicestudio"]
    if descriptor is None:
        print(f"no MoeVoiceStudio descriptor: MoeVoiceStudio has no {manifest['speech_encoder']} content encoder")
    else:
        print(f"MoeVoiceStudio descriptor (save as <name>.json beside the model folder): {json.dumps(descriptor)}")
    return _run_int8_vocoder(args) if args.int8_vocoder else 0


def _print_checks(manifest: dict, note: str = "") -> None:
    """The export's parity line and its split pair (prior + decoder) line, from its manifest."""
    if "parity" in manifest:
        print(f"check: onnx.checker passed; ONNX Runtime vs torch max abs difference "
              f"{manifest['parity']['max_abs_diff']:.2e} on {manifest['parity']['frames']} frames{note}")
    if "split" in manifest:
        sp = manifest["split"]
        print(f"wrote {sp['prior']} + {sp['decoder']} (chunked decoding, {sp['context_frames']} context frames)"
              + (f"; chunked vs one-shot max abs difference {sp['parity']['max_abs_diff']:.2e}" if "parity" in sp
                 else ""))


def _is_rvc(model: str) -> bool:
    """Whether -m is an RVC voice (RVC WebUI / Applio small model, or an RVC training G_*.pth)."""
    from .rvc_export import is_rvc_checkpoint

    return is_rvc_checkpoint(model)


def _is_rvc_onnx(path: str) -> bool:
    from .rvc_runtime import is_rvc_onnx

    return is_rvc_onnx(path)


def _run_rvc(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from .export import manifest_path
    from .rvc_export import export_rvc

    if args.speaker_mix != "auto":
        raise OptionError("--speaker-mix is for so-vits-svc exports; an RVC export takes one speaker id in its "
                          "RVC-layout file and speaker mixes in its split pair already.")
    if args.int8_vocoder and args.no_split:
        raise OptionError("--int8-vocoder quantises the split export's vocoder (voice.dec.onnx): drop --no-split.")
    m = export_rvc(args.model, args.output, opset=args.opset, verify=not args.no_verify, split=not args.no_split,
                   config_path=args.config)
    inputs = ", ".join(f"{n} {v['dtype']} {v['shape']}" for n, v in m["inputs"].items())
    print(f"wrote {args.output}: RVC {m['version']} {'pitch' if m['f0'] else 'no-pitch'} voice, {m['sample_rate']} Hz, "
          f"hop {m['hop_length']}, {m['n_speakers']} speaker(s), opset {m['opset']}, RVC's exporter interface")
    print(f"inputs: {inputs}")
    print(f"output: audio float32 {m['outputs']['audio']['shape']} (NSF noise drawn inside the graph, as RVC's)")
    _print_checks(m, " (same draws)")
    print(f"manifest: {manifest_path(args.output)} (checkpoint sha256 {m['source_checkpoint']['sha256'][:12]}...); "
          "run it with svc_core.onnx.rvc_runtime.RvcOnnxVoice")
    return _run_int8_vocoder(args) if args.int8_vocoder else 0


def _check_output(args: argparse.Namespace) -> None:
    """-o must name an .onnx file: a checkpoint or config overwritten by its own export would be lost."""
    from ..errors import OptionError

    if not args.output.lower().endswith(".onnx"):
        raise OptionError(f"-o '{args.output}': the export is written to an .onnx file (e.g. model.onnx), so that no "
                          "checkpoint or config is overwritten.")


def _run_int8_vocoder(args: argparse.Namespace) -> int:
    from ..paths import require_file
    from ..errors import ModelError
    from .svc import OnnxSvc
    from .vocoder_int8 import add_int8_vocoder

    require_file(args.output, "ONNX export", ModelError, " (export it first: -m G.pth -c config.json, or -m "
                 "voice.pth for an RVC voice)")
    if _is_rvc_onnx(args.output):  # an RVC export converts through RVC's recipe on the engine
        from ..pipeline import Svc

        svc = Svc(args.output, None, encoder_path=args.encoder_path, device="cpu")
    else:
        svc = OnnxSvc(args.output, encoder_path=args.encoder_path, device="cpu")
    entry = add_int8_vocoder(svc, args.calibration)
    c, k = entry["calibration"], entry["check"]
    print(f"wrote {entry['file']}: {entry['quantized_layers']} convolutions int8, {entry['float_layers']} kept float32;"
          f" calibrated on {len(c['clips'])} clip(s), {c['windows']} windows")
    print(f"check on {'held-out clip' if k['held_out'] else 'the calibration clip'} {k['clip']}: SNR of float32 over "
          f"the difference {k['snr_db']:.1f} dB, max abs difference {k['max_abs_diff']:.2e}; use it with "
          "--vocoder-precision int8")
    return 0


def diffusion_vocoder_output(output: str) -> str:
    """-o diffusion.onnx -> diffusion.vocoder.onnx (where --diffusion writes the mel vocoder)."""
    return output[: -len(".onnx")] + ".vocoder.onnx"


def _run_diffusion(args: argparse.Namespace) -> int:
    from ..diffusion.config import load_diffusion_config
    from ..diffusion.stage import find_vocoder
    from ..errors import OptionError
    from .diffusion_export import export_diffusion, export_mel_vocoder

    if not (args.diffusion and args.diffusion_config):
        raise OptionError("export-onnx --diffusion needs the model (--diffusion model_*.pt) and its "
                          "--diffusion-config config.yaml.")
    m = export_diffusion(args.diffusion, args.diffusion_config, args.output, condition=args.denoiser_condition,
                         opset=args.opset, verify=not args.no_verify)
    c = "proj" if m["condition"] == "projected" else "cond"
    print(f"wrote {args.output}: denoiser ({m['n_layers']} layers x {m['n_chans']} channels) x float32 [B, 1, "
          f"{m['in_dims']}, T], t float32 [B], {c} float32 {m['inputs'][c]['shape']} -> eps [B, 1, {m['in_dims']}, T]")
    if "parity" in m:
        print(f"check: ONNX Runtime vs torch max abs {m['parity']['max_abs_diff']:.2e}")
    config = load_diffusion_config(args.diffusion_config)
    vocoder = find_vocoder(args.diffusion_config, config.vocoder_ckpt, args.vocoder)
    voc_out = diffusion_vocoder_output(args.output)
    v = export_mel_vocoder(vocoder, voc_out, kind=config.vocoder_type, opset=args.opset, verify=not args.no_verify)
    print(f"wrote {voc_out}: {v['vocoder_type']} mel float32 [B, {v['n_mels']}, T] + har_source float32 "
          f"[B, 1, T*{v['hop_size']}] -> audio (the harmonic source stays in torch)"
          + (f"; ONNX Runtime vs torch max abs {v['parity']['max_abs_diff']:.2e}" if "parity" in v else ""))
    print(f"manifests: {args.output}.json, {voc_out}.json (checkpoint sha256 {m['source_checkpoint']['sha256'][:12]}"
          f"..., vocoder {v['source_checkpoint']['sha256'][:12]}...)")
    return 0


def _run_encoder(args: argparse.Namespace) -> int:
    from .encoder_export import export_encoder, int8_path

    m = export_encoder(args.encoder, args.encoder_path, args.output, int8=args.int8, opset=args.opset)
    p = m["parity"]
    print(f"wrote {args.output}: {m['encoder']} wav float32 [1, N] at 16 kHz -> features float32 [1, {m['dim']}, T]")
    print(f"check: ONNX Runtime vs torch max abs {p['max_abs']:.2e}, min frame cosine {p['min_cosine']:.6f}")
    if args.int8:
        q = m["int8"]
        e = q["feature_error_vs_float"]
        print(f"wrote {int8_path(args.output)} ({q['size_bytes']['int8'] / 2**20:.1f} MB vs "
              f"{q['size_bytes']['float'] / 2**20:.1f} MB): feature error vs torch float: max abs {e['max_abs']:.3g}, "
              f"relative RMS {e['rel_rms']:.3%}, mean frame cosine {e['mean_cosine']:.5f} (min {e['min_cosine']:.5f})")
    return 0
