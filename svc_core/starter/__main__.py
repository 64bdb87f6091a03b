"""Command line: python -m svc_core.starter corpus|config|package ... (see --help of each).

    python -m svc_core.starter corpus --out DIR [--sentences 200] [--songs-per-sentence 1] [--jobs 2]
    python -m svc_core.starter config --data DATASET          # starter model size into DATASET/config.json
    python -m svc_core.starter package --run RUN --encoder pretrain/phonevec256.pt [--index K] --out voices/starter
    python -m svc_core.starter eval-convert --inputs DIR --out DIR [--voice voices/starter] [--f0 fcpe]
        [--second shallow|only|enhance --diffusion RUN --vocoder VOC -ks 100 --method dpm-solver++ --speedup 10]
"""
from __future__ import annotations

import argparse
import sys
import time

from .voices import STARTER_VOICE_IDS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m svc_core.starter", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("corpus", help="render the speech + singing corpus (DIR/raw/<voice>/*.wav, manifest.json)")
    c.add_argument("--out", required=True)
    c.add_argument("--sentences", type=int, default=200, help="training sentences (default 200)")
    c.add_argument("--songs-per-sentence", type=int, default=1, help="sung versions per sentence and voice")
    c.add_argument("--voices", type=_csv, default=STARTER_VOICE_IDS,
                   help="comma-separated voice ids (default: " + ",".join(STARTER_VOICE_IDS) + ")")
    c.add_argument("--seed", type=int, default=0, help="melody seed")
    c.add_argument("--jobs", type=int, default=1)
    g = sub.add_parser("config", help="write the starter model size and training settings into DATASET/config.json")
    g.add_argument("--data", required=True)
    k = sub.add_parser("package", help="release folder: G (release, fp16), config, index, encoder, manifest")
    k.add_argument("--run", required=True, help="training run folder")
    k.add_argument("--encoder", default=None,
                   help="content encoder file to ship in the folder (phonevec256.pt); omit to rely on the usual lookup")
    k.add_argument("--index", default=None, help="kmeans_*.pt or feature_and_index.pkl")
    k.add_argument("--corpus", default=None, help="the starter corpus folder (its manifest is summarised)")
    k.add_argument("--out", required=True, help="release folder, e.g. voices/starter")
    k.add_argument("--fp32", action="store_true", help="keep the generator in float32")
    e = sub.add_parser("eval-convert", help="convert ../shared/eval inputs (make_inputs.py) with a voice folder")
    e.add_argument("--inputs", required=True, help="folder with <pair_id>.wav and manifest.json")
    e.add_argument("--voice", default="voices/starter", help="voice folder (default voices/starter)")
    e.add_argument("--out", required=True, help="where <pair_id>.wav outputs go")
    e.add_argument("--f0", default="fcpe")
    e.add_argument("--f0-threshold", type=float, default=None,
                   help="voicing threshold of crepe/rmvpe/fcpe (default: the predictor's, fcpe 0.4)")
    e.add_argument("--cluster-ratio", type=float, default=0.0)
    e.add_argument("--noise-scale", type=float, default=0.4)
    e.add_argument("--limit", type=int, default=0)
    e.add_argument("--second", default="none", choices=("none", "shallow", "only", "enhance"),
                   help="second stage after the so-vits model: shallow diffusion, only-diffusion (no so-vits), the "
                        "NSF-HiFiGAN enhancer, or none (default)")
    e.add_argument("--diffusion", default=None,
                   help="diffusion model_*.pt or a folder with model_*.pt + config.yaml (default: VOICE/diffusion)")
    e.add_argument("--vocoder", default=None, help="NSF-HiFiGAN model file or folder (default: the diffusion "
                                                   "config's vocoder, else pretrain/nsf_hifigan)")
    e.add_argument("-ks", "--k-step", type=int, default=100, help="shallow diffusion depth (default 100)")
    e.add_argument("--method", default=None, help="sampler (default: the diffusion config's)")
    e.add_argument("--speedup", type=int, default=None, help="sampler speedup (default: the diffusion config's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.time()
    if args.command == "corpus":
        from .corpus import StarterCorpusSettings, build_corpus

        if args.sentences < 1 or args.songs_per_sentence < 0 or args.jobs < 1:
            print("error: --sentences and --jobs must be >= 1, --songs-per-sentence >= 0", file=sys.stderr)
            return 2
        doc = build_corpus(StarterCorpusSettings(out=args.out, n_sentences=args.sentences,
                                                 songs_per_sentence=args.songs_per_sentence, voices=args.voices,
                                                 seed=args.seed, jobs=args.jobs), progress=True)
        t = doc["totals"]
        print(f"{t['speech']['clips']} spoken ({t['speech']['hours']:.2f} h) + {t['singing']['clips']} sung "
              f"({t['singing']['hours']:.2f} h) clips in {args.out}/raw")
    elif args.command == "config":
        from .model_config import apply_to_dataset

        changed = apply_to_dataset(args.data)
        print(f"{args.data}/config.json: starter settings {'written' if changed else 'already there'}")
    elif args.command == "eval-convert":
        from .evaluation import EvalSettings, SecondStage, convert_eval_inputs

        second = SecondStage(args.second, args.diffusion, args.vocoder, args.k_step, args.method, args.speedup)
        r = convert_eval_inputs(EvalSettings(args.inputs, args.voice, args.out, args.f0, args.cluster_ratio,
                                             args.noise_scale, args.limit, args.f0_threshold, second))
        print(f"converted {r['pairs']} pairs ({r['audio_seconds']:.0f} s of audio) in {r['seconds']:.0f} s "
              f"(real-time factor {r['rtf']:.3f}) into {args.out}")
    else:
        import os

        from .package import PackageSettings, package_voices

        corpus = os.path.join(args.corpus, "manifest.json") if args.corpus else None
        package_voices(PackageSettings(run_dir=args.run, out_dir=args.out, encoder=args.encoder, index=args.index,
                                       corpus_manifest=corpus, half=not args.fp32))
    print(f"{args.command} done in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
