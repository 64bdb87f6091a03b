"""The openvpi NSF-HiFiGAN mel and vocoder against upstream's own numbers (../shared/compat/parity/diffusion)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.vocoders import load_mel_vocoder
from svc_core.vocoders.mel import MelExtractor, MelSettings, mel_filterbank

MEL_TOL = 1e-5
AUDIO_TOL = 1e-4
TRIM = 22050  # samples: upstream's 0.5 s pad removed from each side of the slice (README section 6)
CENTRE_PAD = 204  # zeros slice_inference puts back on each side


@pytest.fixture(scope="module")
def diff_dir(parity_dir):
    return parity_dir / "diffusion"


@pytest.fixture(scope="module")
def vocoder(diff_dir):
    return load_mel_vocoder(diff_dir / "models" / "nsf_hifigan_dev")


@pytest.fixture(scope="module")
def mel_npz(diff_dir):
    return np.load(diff_dir / "mel.npz")


@pytest.fixture(scope="module")
def voc_npz(diff_dir):
    return np.load(diff_dir / "vocoder.npz")


def test_mel_basis(mel_npz):
    """Our slaney filterbank is upstream's librosa basis, bit for bit."""
    assert np.array_equal(mel_filterbank(MelSettings()).numpy(), mel_npz["mel_basis"])


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [(22050, 1024, 80, 0, 8000), (48000, 2048, 128, 40, 24000),
                                                           (32000, 1024, 100, 1000, 16000)])
def test_mel_basis_other_settings_match_librosa(sr, n_fft, n_mels, fmin, fmax):
    """Other vocoder configs too (librosa is imported here only: seconds of numba start-up)."""
    from librosa.filters import mel as librosa_mel

    ours = mel_filterbank(MelSettings(sr, n_mels, n_fft, n_fft, n_fft // 4, fmin, fmax)).numpy()
    assert np.array_equal(ours, librosa_mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))


@pytest.mark.parametrize("audio_key, mel_key, keyshift", [
    ("audio", "mel", 0), ("audio_short", "mel_short", 0), ("audio", "mel_keyshift2", 2)])
def test_mel(mel_npz, vocoder, audio_key, mel_key, keyshift):
    """Long input (reflect pad), a 300-sample input (zero pad: reflection needs a longer input), keyshift 2."""
    mel = vocoder.extract(torch.from_numpy(mel_npz[audio_key]), keyshift=keyshift).numpy()
    assert mel.shape == mel_npz[mel_key].shape
    assert np.abs(mel - mel_npz[mel_key]).max() <= MEL_TOL


def test_mel_frames_rule():
    m = MelExtractor(MelSettings())
    for n in (300, 512, 88200, 264192):
        assert m.frames(n) == m(torch.zeros(1, n)).shape[-1]
    assert m.frames(264192) == 516


def _recorded(voc_npz, splits: int = 1) -> RecordedNoise:
    draws = [voc_npz["rand_ini"]] + np.array_split(voc_npz["sine_noise"], splits, axis=1)
    return RecordedNoise(draws)


def test_excitation(vocoder, voc_npz):
    f0 = torch.from_numpy(voc_npz["f0"])[..., 0]
    noise = _recorded(voc_npz)
    har = vocoder.generator.m_source(f0, noise)
    assert noise.exhausted
    assert np.abs(har.transpose(1, 2).numpy() - voc_npz["har_source"]).max() <= AUDIO_TOL


def test_audio(vocoder, voc_npz):
    mel, f0 = torch.from_numpy(voc_npz["mel"]), torch.from_numpy(voc_npz["f0"])
    audio = vocoder.decode(mel, f0, noise=_recorded(voc_npz))
    ref = voc_npz["audio"][:, 0]
    assert audio.shape == ref.shape
    assert np.abs(audio.numpy() - ref).max() <= AUDIO_TOL
    assert np.abs(ref).max() > 0.1  # the reference is not near-silent, so the tolerance means something


def test_audio_chunked_recorded(vocoder, voc_npz):
    """Chunked decode: per-chunk noise draws (the recorded draw split at the chunk borders) give upstream's audio."""
    mel, f0 = torch.from_numpy(voc_npz["mel"]), torch.from_numpy(voc_npz["f0"])
    noise = _recorded(voc_npz, splits=4)  # 64 frames in chunks of 16
    audio = vocoder.decode(mel, f0, noise=noise, chunk_frames=16)
    assert noise.exhausted
    assert np.abs(audio.numpy() - voc_npz["audio"][:, 0]).max() <= AUDIO_TOL


def test_rng_state_reproduces_draws(vocoder, voc_npz):
    """With torch's global RNG at upstream's state, TorchNoise() draws upstream's numbers (whole or chunked)."""
    mel, f0 = torch.from_numpy(voc_npz["mel"]), torch.from_numpy(voc_npz["f0"])
    saved = torch.get_rng_state()
    try:
        for chunk in (0, 32):
            torch.set_rng_state(torch.from_numpy(voc_npz["rng_state"]))
            audio = vocoder.decode(mel, f0, noise=TorchNoise(), chunk_frames=chunk)
            assert np.abs(audio.numpy() - voc_npz["audio"][:, 0]).max() <= AUDIO_TOL
    finally:
        torch.set_rng_state(saved)


@pytest.mark.parametrize("mode", ["only_diffusion", "shallow"])
def test_end_to_end_output(diff_dir, vocoder, mode):
    """e2e_*.npz: the diffusion mel vocoded (draws from the recorded RNG state), trimmed and padded as
    slice_inference does, is upstream's output."""
    z = np.load(diff_dir / f"e2e_{mode}.npz")
    mel, f0 = torch.from_numpy(z["diff_mel"]), torch.from_numpy(z["diff_f0"])
    saved = torch.get_rng_state()
    try:
        torch.set_rng_state(torch.from_numpy(z["voc_rng_state"]))
        audio = vocoder.decode(mel, f0, chunk_frames=vocoder.DEFAULT_CHUNK_FRAMES)[0].numpy()
    finally:
        torch.set_rng_state(saved)
    out = np.pad(audio[TRIM:-TRIM], (CENTRE_PAD, CENTRE_PAD))
    assert out.shape == z["output"].shape
    assert np.abs(out - z["output"]).max() <= AUDIO_TOL


def test_end_to_end_excitation(diff_dir, vocoder):
    z = np.load(diff_dir / "e2e_shallow.npz")
    saved = torch.get_rng_state()
    try:
        torch.set_rng_state(torch.from_numpy(z["voc_rng_state"]))
        har = vocoder.generator.m_source(torch.from_numpy(z["diff_f0"])[..., 0], TorchNoise(), block_frames=128)
    finally:
        torch.set_rng_state(saved)
    assert np.abs(har.transpose(1, 2).numpy() - z["voc_har_source"]).max() <= AUDIO_TOL


def test_log10_kind_scales_the_mel(diff_dir, voc_npz):
    """nsf-hifigan-log10 = the same generator fed 0.434294 * mel."""
    plain = load_mel_vocoder(diff_dir / "models" / "nsf_hifigan_dev")
    log10 = load_mel_vocoder(diff_dir / "models" / "nsf_hifigan_dev", kind="nsf-hifigan-log10")
    mel, f0 = torch.from_numpy(voc_npz["mel"]), torch.from_numpy(voc_npz["f0"])
    a = log10.decode(mel, f0, noise=_recorded(voc_npz))
    b = plain.decode(mel * 0.434294, f0, noise=_recorded(voc_npz))
    assert torch.equal(a, b)
    assert np.abs(a.numpy() - voc_npz["audio"][:, 0]).max() > 1e-2
