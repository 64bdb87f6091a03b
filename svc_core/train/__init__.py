"""Training so-vits-svc 4.x models (upstream-compatible G_/D_ checkpoints) and cluster/index files.

    from svc_core.train.trainer import Trainer
    from svc_core.train.settings import TrainSettings
    summary = Trainer("dataset", "logs/run", TrainSettings(steps=1000, batch_size=4)).fit()

Modules: dataset (files -> batches), discriminator (MultiPeriodDiscriminator), losses, mel, checkpoints
(G_/D_ files, resume, bases, keep-best), settings, trainer (the loop), ddp (torchrun), index (train-index),
cli (the `train` / `train-index` subcommands). Nothing is imported here, so `import svc_core.train` is cheap.
"""
