"""Content encoders: 16 kHz audio -> [1, C, T] speech features at 50 frames/s, behind one registry.

    enc = get_encoder("vec768l12")            # looks in $SVC_PRETRAIN_DIR, then ./pretrain
    feats = enc.encode(wav16k)                # [1, 768, T]
    check_compatible(enc, ssl_dim=768, speech_encoder="vec768l12")
"""
from .base import ContentEncoder, EncoderInfo
from .contentvec import ContentVecEncoder, clear_cache, load_hubert_checkpoint
from .hubert_soft import HubertSoft, HubertSoftEncoder, load_hubert_soft
from .registry import (
    check_compatible,
    encoder_info,
    expected_encoder,
    find_weights,
    get_encoder,
    list_encoders,
    register_encoder,
)

__all__ = [
    "ContentEncoder",
    "ContentVecEncoder",
    "EncoderInfo",
    "HubertSoft",
    "HubertSoftEncoder",
    "check_compatible",
    "clear_cache",
    "encoder_info",
    "expected_encoder",
    "find_weights",
    "get_encoder",
    "list_encoders",
    "load_hubert_checkpoint",
    "load_hubert_soft",
    "register_encoder",
]
