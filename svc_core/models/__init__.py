"""so-vits-svc 4.x synthesizer modules (SynthesizerTrn and its parts), numerically matching upstream 4.1-Stable."""
from .synthesizer import SynthesizerTrn

__all__ = ["SynthesizerTrn"]
