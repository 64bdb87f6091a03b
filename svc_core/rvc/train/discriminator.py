"""RVC's multi-period discriminators: svc_core.train's MultiPeriodDiscriminator (same DiscriminatorS /
DiscriminatorP layers and D_*.pth key names) with RVC's periods per version."""
from __future__ import annotations

from ...train.discriminator import MultiPeriodDiscriminator

PERIODS = {
    "v1": (2, 3, 5, 7, 11, 17),  # RVC's MultiPeriodDiscriminator
    "v2": (2, 3, 5, 7, 11, 17, 23, 37),  # RVC's MultiPeriodDiscriminatorV2
}


def rvc_discriminator(version: str, width_divisor: int = 1) -> MultiPeriodDiscriminator:
    """The discriminator RVC trains a `version` model with (no spectral norm, as RVC's configs)."""
    return MultiPeriodDiscriminator(use_spectral_norm=False, width_divisor=width_divisor, periods=PERIODS[version])
