"""Command line: python -m svc_core.phonevec corpus|train|probe|info ... (see --help of each)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from .voices import VOICE_IDS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m svc_core.phonevec", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corpus", help="render sentences x voices (+ WORLD variants) into a corpus folder")
    c.add_argument("--out", required=True)
    c.add_argument("--sentences", type=int, default=3000)
    c.add_argument("--voices", type=_csv, default=VOICE_IDS, help="comma-separated voice ids (default: all 15)")
    c.add_argument("--world-variants", type=int, default=1)
    c.add_argument("--world-fraction", type=float, default=1.0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--jobs", type=int, default=1)

    t = sub.add_parser("train", help="CTC training (resumes from OUT/state.pt)")
    t.add_argument("--corpus", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--max-steps", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=0.0)
    t.add_argument("--batch-seconds", type=float, default=60.0)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup-steps", type=int, default=500)
    t.add_argument("--adv-weight", type=float, default=0.1)
    t.add_argument("--layers", type=int, default=6)
    t.add_argument("--feature-layer", type=int, default=5)
    t.add_argument("--ff-dim", type=int, default=512)
    t.add_argument("--holdout-voices", type=_csv, default=())
    t.add_argument("--val-sentences", type=int, default=20)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--half", action="store_true", help="store the encoder file in float16")
    t.add_argument("--no-resume", action="store_true")

    q = sub.add_parser("probe", help="PER and speaker-ID probes of an encoder file on held-out sentences")
    q.add_argument("--corpus", required=True)
    q.add_argument("--encoder", required=True)
    q.add_argument("--sentences", type=int, default=20, help="held-out sentences to use")
    q.add_argument("--layers", type=str, default="", help="comma-separated layers to probe (default: the tap)")
    q.add_argument("--json", dest="json_out", default="")
    q.add_argument("--threads", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.time()
    if args.command == "corpus":
        from .corpus import CorpusSettings, build_corpus

        corpus = build_corpus(CorpusSettings(out=args.out, n_sentences=args.sentences, voices=args.voices,
                                             world_variants=args.world_variants, world_fraction=args.world_fraction,
                                             seed=args.seed, jobs=args.jobs), progress=True)
        hours = sum(c["n_samples"] for c in corpus.clips) / 16000 / 3600
        print(f"{len(corpus.clips)} clips ({hours:.2f} h) in {args.out} after {time.time() - t0:.0f} s")
    elif args.command == "train":
        from .model import PhoneVecConfig
        from .train import TrainSettings, train

        model = PhoneVecConfig(n_layers=args.layers, feature_layer=args.feature_layer, ff_dim=args.ff_dim)
        result = train(TrainSettings(corpus=args.corpus, out=args.out, model=model, epochs=args.epochs,
                                     max_steps=args.max_steps, max_minutes=args.max_minutes,
                                     batch_seconds=args.batch_seconds, lr=args.lr, warmup_steps=args.warmup_steps,
                                     adv_weight=args.adv_weight, holdout_voices=args.holdout_voices,
                                     val_sentences=args.val_sentences, val_every=args.val_every,
                                     log_every=args.log_every,
                                     threads=args.threads, seed=args.seed, half_checkpoint=args.half,
                                     resume=not args.no_resume))
        print(json.dumps({k: v for k, v in result.items() if k != "losses"}))
    elif args.command == "probe":
        import torch

        from .probe import ProbeSettings, run_probe

        torch.set_num_threads(args.threads)
        layers = tuple(int(x) for x in args.layers.split(",") if x)
        report = run_probe(ProbeSettings(corpus=args.corpus, encoder=args.encoder, sentences=args.sentences,
                                         layers=layers))
        text = json.dumps(dataclasses.asdict(report) if dataclasses.is_dataclass(report) else report, indent=1)
        print(text)
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as fh:
                fh.write(text)
    print(f"done in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
