"""Training so-vits-svc 4.1 shallow-diffusion models (`python -m svc_core train-diff`), as upstream's train_diff.py.

    from svc_core.diffusion.train.trainer import DiffTrainer
    from svc_core.diffusion.train.settings import DiffTrainSettings
    summary = DiffTrainer("dataset", "logs/44k/diffusion", DiffTrainSettings(steps=1000)).fit()

Modules: presets (model/train sizes written into diffusion.yaml), settings (the yaml's train section + CLI
overrides), dataset (cached mel / units / f0 / volume -> 2 s crops with pitch augmentation), checkpoints
(model_{step}.pt, resume, bases, upstream's keep rule + keep-best), validation (loss + audio), trainer (the loop),
cli (the `train-diff` subcommand). Nothing is imported here, so `import svc_core.diffusion.train` is cheap.
"""
