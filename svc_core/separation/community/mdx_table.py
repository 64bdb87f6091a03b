"""Processing settings of the published UVR MDX-Net ONNX models, keyed by UVR's file hash (mdx.model_hash).

The numbers are facts about the released files (the FFT they were trained with, the spectrogram size, the gain
UVR applies after them), as listed by Ultimate Vocal Remover's model-data table; the table lives here so that no
lookup happens at run time. A model missing from it needs a .yaml beside it (see mdx.read_params).
Row: hash -> (n_fft, dim_f, log2 dim_t, compensate, primary stem, is_karaoke, name where known).
"""
from __future__ import annotations

KNOWN_MDX_MODELS: dict[str, tuple[int, int, int, float, str, bool, str]] = {
    "0ddfc0eb5792638ad5dc27850236c246": (6144, 2048, 8, 1.035, "Vocals", False, ""),
    "26d308f91f3423a67dc69a6d12a8793d": (8192, 2048, 9, 1.035, "Other", False, ""),
    "2cdd429caac38f0194b133884160f2c6": (7680, 3072, 8, 1.045, "Instrumental", False, ""),
    "2f5501189a2f6db6349916fabe8c90de": (6144, 2048, 8, 1.035, "Vocals", True, ""),
    "398580b6d5d973af3120df54cee6759d": (7680, 3072, 8, 1.75, "Vocals", False, ""),
    "488b3e6f8bd3717d9d7c428476be2d75": (7680, 3072, 8, 1.035, "Instrumental", False, ""),
    "4910e7827f335048bdac11fa967772f9": (4096, 2048, 7, 1.035, "Drums", False, ""),
    "53c4baf4d12c3e6c3831bb8f5b532b93": (7680, 3072, 8, 1.043, "Vocals", False, ""),
    "5d343409ef0df48c7d78cce9f0106781": (7680, 3072, 8, 1.075, "Vocals", False, ""),
    "5f6483271e1efb9bfb59e4a3e6d4d098": (6144, 2048, 9, 1.035, "Vocals", False, ""),
    "65ab5919372a128e4167f5e01a8fda85": (8192, 2048, 8, 1.035, "Other", False, ""),
    "6703e39f36f18aa7855ee1047765621d": (16384, 2048, 9, 1.035, "Bass", False, ""),
    "6b31de20e84392859a3d09d43f089515": (6144, 2048, 8, 1.035, "Vocals", False, ""),
    "867595e9de46f6ab699008295df62798": (7680, 3072, 8, 1.03, "Vocals", False, ""),
    "a3cd63058945e777505c01d2507daf37": (6144, 2048, 8, 1.03, "Vocals", False, ""),
    "b33d9b3950b6cbf5fe90a32608924700": (7680, 3072, 8, 1.03, "Vocals", False, ""),
    "c3b29bdce8c4fa17ec609e16220330ab": (16384, 2048, 8, 1.035, "Bass", False, ""),
    "ceed671467c1f64ebdfac8a2490d0d52": (7680, 3072, 8, 1.035, "Instrumental", False, ""),
    "d2a1376f310e4f7fa37fb9b5774eb701": (7680, 3072, 8, 1.035, "Instrumental", False, ""),
    "d7bff498db9324db933d913388cba6be": (6144, 2048, 8, 1.035, "Vocals", False, ""),
    "d94058f8c7f1fae4164868ae8ae66b20": (6144, 2048, 8, 1.035, "Vocals", False, ""),
    "dc41ede5961d50f277eb846db17f5319": (4096, 2048, 9, 1.035, "Drums", False, ""),
    "e5572e58abf111f80d8241d2e44e7fa4": (7680, 3072, 8, 1.028, "Instrumental", False, ""),
    "e7324c873b1f615c35c1967f912db92a": (7680, 3072, 8, 1.03, "Vocals", False, ""),
    "1c56ec0224f1d559c42fd6fd2a67b154": (5120, 2048, 8, 1.025, "Instrumental", False, ""),
    "f2df6d6863d8f435436d8b561594ff49": (7680, 3072, 8, 1.035, "Instrumental", False, ""),
    "b06327a00d5e5fbc7d96e1781bbdb596": (6144, 3072, 8, 1.035, "Instrumental", False, ""),
    "94ff780b977d3ca07c7a343dab2e25dd": (6144, 3072, 8, 1.039, "Instrumental", False, ""),
    "73492b58195c3b52d34590d5474452f6": (7680, 3072, 8, 1.043, "Vocals", False, ""),
    "970b3f9492014d18fefeedfe4773cb42": (7680, 3072, 8, 1.009, "Vocals", False, "Kim_Vocal_2"),
    "1d64a6d2c30f709b8c9b4ce1366d96ee": (5120, 2048, 8, 1.065, "Instrumental", True, ""),
    "203f2a3955221b64df85a41af87cf8f0": (6144, 3072, 8, 1.035, "Instrumental", False, ""),
    "291c2049608edb52648b96e27eb80e95": (6144, 3072, 8, 1.035, "Instrumental", False, ""),
    "ead8d05dab12ec571d67549b3aab03fc": (6144, 3072, 8, 1.035, "Instrumental", False, ""),
    "cc63408db3d80b4d85b0287d1d7c9632": (6144, 3072, 8, 1.033, "Instrumental", False, "UVR-MDX-NET-Inst_HQ_3"),
    "cd5b2989ad863f116c855db1dfe24e39": (6144, 3072, 9, 1.035, "Reverb", False, ""),
    "55657dd70583b0fedfba5f67df11d711": (6144, 3072, 8, 1.022, "Instrumental", False, ""),
    "b6bccda408a436db8500083ef3491e8b": (7680, 3072, 8, 1.02, "Instrumental", False, ""),
    "8a88db95c7fb5dbe6a095ff2ffb428b1": (5120, 2048, 8, 1.026, "Instrumental", False, ""),
    "b78da4afc6512f98e4756f5977f5c6b9": (7680, 3072, 8, 1.021, "Instrumental", False, ""),
    "77d07b2667ddf05b9e3175941b4454a0": (7680, 3072, 8, 1.021, "Vocals", False, "UVR-MDX-NET-Voc_FT"),
}
