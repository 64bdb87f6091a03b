"""so-vits-svc 4.1 shallow diffusion (Diff-SVC style Unit2Mel + GaussianDiffusion) and its samplers.

Public entry points: `load_diffusion(model_path, config_path, device)` -> Unit2Mel (with `.config`),
`find_diffusion_files(voice_dir)`, `load_diffusion_config(path)` -> DiffusionConfig.
"""
from .config import DiffusionConfig, diffusion_config_from_dict, load_diffusion_config, template_diffusion_config
from .gaussian import GaussianDiffusion
from .loader import find_diffusion_files, load_diffusion, save_diffusion_checkpoint
from ..noise import NoiseSource, RecordedNoise, TorchNoise
from .schedule import Schedule
from .unit2mel import Unit2Mel
from .wavenet import WaveNet

__all__ = [
    "DiffusionConfig", "diffusion_config_from_dict", "load_diffusion_config", "template_diffusion_config",
    "GaussianDiffusion", "Unit2Mel", "WaveNet", "Schedule", "NoiseSource", "TorchNoise", "RecordedNoise",
    "load_diffusion", "find_diffusion_files", "save_diffusion_checkpoint",
]
