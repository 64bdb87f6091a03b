"""The live engine (svc_core.live): settings, SOLA, and streaming through real voices.

The starter WORLD voice (voices/starter) streams a sung example and is compared with its offline conversion:
the melody is followed to a few cents, and the spectral envelope (mel-cepstral distortion, WORLD re-analysis) of
the stream is closer to the offline conversion into the same speaker than to any other speaker's. Random-weight
so-vits (upstream layout) and RVC voices stream through the same session.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from svc_core.audio import load_audio, resample
from svc_core.errors import OptionError, SpeakerError
from svc_core.live import LiveSession, LiveSettings, fade_windows, sola_offset
from svc_core.live.session import level_db

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "voices" / "starter"
EXAMPLE = ROOT / "examples" / "singing_slt.flac"
MCEP_ORDER = 25  # coded spectral envelope dimensions for the distortion


# ----------------------------------------------------------------- settings and SOLA (no model)
@pytest.mark.parametrize("changes, words", [
    ({"block_seconds": 0.001}, "block_seconds is 0.001 s; it must be 0.02 to 2 s"),
    ({"extra_seconds": float("nan")}, "extra_seconds"),
    ({"io_rate": 12345}, "io_rate is 12345 Hz"),
    ({"silence_db": "loud"}, "silence_db must be a number"),
    ({"f0_predictor": ""}, "f0_predictor must be a predictor name"),
])
def test_bad_settings_are_refused_with_the_rule(changes, words):
    with pytest.raises(OptionError, match=words):
        LiveSettings(**changes)


def test_unknown_setting_names_the_known_ones():
    with pytest.raises(OptionError, match="Unknown live setting.*blok_seconds.*block_seconds"):
        LiveSettings.from_kwargs(blok_seconds=0.1)


def test_sola_finds_the_shift_and_the_fades_add_to_one():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(4000).astype(np.float32)
    tail = signal[1000:1400]
    assert sola_offset(tail, signal[1000 - 37:], search=80) == 37
    assert sola_offset(np.zeros(400, np.float32), signal, search=80) == 0
    fade_in, fade_out = fade_windows(256)
    np.testing.assert_allclose(fade_in + fade_out, 1.0, atol=1e-6)
    assert fade_in[0] < 0.01 and fade_in[-1] > 0.99


# ----------------------------------------------------------------- the starter voice
@pytest.fixture(scope="module")
def starter():
    from svc_core.starter.evaluation import load_voice

    return load_voice(STARTER)


@pytest.fixture(scope="module")
def sung():
    wav, sr = load_audio(EXAMPLE)
    return wav.astype(np.float32), sr


def stream(session: LiveSession, wav: np.ndarray, sizes) -> tuple[np.ndarray, list]:
    """Feed `wav` in pieces of the given sizes (cycled) -> (all output, the LiveOutputs)."""
    outs, start, i = [], 0, 0
    while start < len(wav):
        size = sizes[i % len(sizes)]
        outs.append(session.process(wav[start:start + size]))
        start, i = start + size, i + 1
    return np.concatenate([o.audio for o in outs]), outs


def keeps_pace(out: np.ndarray, wav: np.ndarray, session: LiveSession) -> bool:
    """The output is as long as the input, less at most the unfinished block and the resamplers' hold-back."""
    held = session.block_samples + session.algorithmic_delay_seconds * session.settings.io_rate
    return len(wav) - held <= len(out) <= len(wav)


def mcep(audio: np.ndarray, sr: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """WORLD analysis -> (coded envelope [T, MCEP_ORDER], f0 [T] Hz) on a hop-sample grid."""
    from svc_core.f0.classic import load_pyworld

    pw = load_pyworld()
    x = np.asarray(audio, dtype=np.float64)
    f0, t = pw.dio(x, sr, frame_period=hop / sr * 1000)
    f0 = pw.stonemask(x, f0, t, sr)
    return pw.code_spectral_envelope(pw.cheaptrick(x, f0, t, sr), sr, MCEP_ORDER), f0


def distance(ref: tuple, out: tuple, lag: int) -> tuple[float, np.ndarray]:
    """(mel-cepstral distortion in dB over frames voiced in both, |f0 difference| in cents there) with `out`
    `lag` frames late."""
    (a, fa), (b, fb) = ref, out
    b, fb = b[lag:], fb[lag:]
    n = min(len(a), len(b))
    voiced = (fa[:n] > 0) & (fb[:n] > 0)
    diff = a[:n][voiced, 1:] - b[:n][voiced, 1:]
    mcd = float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(diff ** 2, axis=1))))
    return mcd, 1200 * np.abs(np.log2(fb[:n][voiced] / fa[:n][voiced]))


def test_stream_follows_the_offline_conversion(starter, sung):
    """Stated tolerance (measured 2026-12-06 with the default settings, dio: f0 median 3.2 cents, p90 12; MCD to
    the same speaker's offline conversion 6.9 dB against 11.2-13.0 dB to the other speakers'): f0 median <= 20
    cents and p90 <= 60 cents, and the stream is closer to its own speaker's offline conversion than to every other
    speaker's by >= 2 dB."""
    wav, sr = sung
    hop = starter.hop_length
    settings = LiveSettings(speaker="flite_awb", io_rate=sr, silence_db=None)  # the default f0 predictor, dio
    session = LiveSession(starter, settings)
    live, outs = stream(session, wav, [session.block_samples])
    assert np.all(np.isfinite(live)) and np.abs(live).max() > 0.01
    assert keeps_pace(live, wav, session)  # output keeps pace with input
    live_frames = mcep(live, sr, hop)
    offline = {spk: mcep(starter.slice_inference(wav, sr, spk, f0_predictor=settings.f0_predictor), sr, hop)
               for spk in starter.speakers}
    delay = int(round(session.algorithmic_delay_seconds * sr / hop))
    lag = min(range(delay + 3), key=lambda k: distance(offline["flite_awb"], live_frames, k)[0])
    own, cents = distance(offline["flite_awb"], live_frames, lag)
    assert np.median(cents) <= 20 and np.percentile(cents, 90) <= 60
    for other in set(starter.speakers) - {"flite_awb"}:
        assert distance(offline[other], live_frames, lag)[0] >= own + 2.0, other
    steps = [o for o in outs if o.blocks]
    assert all(o.infer_seconds > 0 and "synthesizer" in o.stages for o in steps)


def test_input_chunking_does_not_change_the_output(starter, sung):
    """The session is a stream: 1 block per call, odd-sized calls or 3 blocks at once give the same samples (at
    the model's rate; with a resampler, its drift correction depends on where the calls end)."""
    wav, sr = sung
    wav = wav[: 2 * sr]
    results = []
    for sizes in ([None], [777, 5003, 1], [None, None, None]):
        session = LiveSession(starter, LiveSettings(speaker="fest_ked", f0_predictor="dio", silence_db=None,
                                                    io_rate=sr))
        block = session.block_samples
        sizes = [3 * block] if sizes == [None, None, None] else [block if s is None else s for s in sizes]
        results.append(stream(session, wav, sizes)[0])
    n = min(len(r) for r in results) - session.block_samples
    np.testing.assert_array_equal(results[0][:n], results[1][:n])
    np.testing.assert_array_equal(results[0][:n], results[2][:n])


def test_each_block_comes_back_in_its_own_call(starter):
    """48 kHz in, a 44.1 kHz model: the input resampler's hold-back and bursts are primed for, and the io block's
    fraction of a model sample is made up, so every call of one block returns about one block (no call returns
    nothing, which would add a whole block of latency)."""
    rng = np.random.default_rng(1)
    for block in (0.05, 0.1, 0.13):
        session = LiveSession(starter, LiveSettings(block_seconds=block, speaker="flite_awb", f0_predictor="dio",
                                                    silence_db=None))
        n = session.block_samples
        lengths = [len(session.process(0.1 * rng.standard_normal(n).astype(np.float32)).audio) for _ in range(40)]
        burst = session.algorithmic_delay_seconds * 48000
        assert min(lengths) >= n - burst and max(lengths) <= n + burst, (block, sorted(set(lengths)))


def test_silence_gate_skips_the_work_and_outputs_silence(starter):
    session = LiveSession(starter, LiveSettings(speaker="flite_slt", silence_db=-50.0))
    out = session.process(np.full(session.block_samples * 3, 1e-4, np.float32))
    assert out.blocks >= 2 and out.gated and out.infer_seconds == 0.0
    assert not np.any(out.audio) and out.level_db == pytest.approx(-80.0, abs=0.5)
    assert level_db(np.zeros(0, np.float32)) == -120.0


def test_reset_and_bad_input(starter, sung):
    wav, sr = sung
    settings = LiveSettings(speaker="flite_rms", f0_predictor="dio", io_rate=sr, silence_db=None)
    session = LiveSession(starter, settings)
    first = stream(session, wav[:sr], [session.block_samples])[0]
    session.reset()
    again = stream(session, wav[:sr], [session.block_samples])[0]
    np.testing.assert_array_equal(first, again)
    noisy = wav[:session.block_samples].copy()
    noisy[::7] = np.nan
    assert np.all(np.isfinite(session.process(noisy).audio))
    with pytest.raises(SpeakerError):
        LiveSession(starter, LiveSettings(speaker="nobody"))
    with pytest.raises(OptionError, match="no cluster or index"):
        LiveSession(starter, LiveSettings(speaker="flite_rms", cluster_ratio=0.5))


# ----------------------------------------------------------------- other voice families
def _sung_48k(seconds: float) -> np.ndarray:
    from audio_factories import sung_phrase

    return resample(sung_phrase(seconds), 44100, 48000).astype(np.float32)


def test_so_vits_voice_streams(tmp_path):
    """A random-weight so-vits 4.1 voice in upstream's layout, with a random ContentVec-layout encoder: the
    NSF-HiFiGAN vocoder decodes only each step's new frames, and the output keeps pace."""
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint
    from svc_core import Svc

    g_path, config_path = make_upstream_checkpoint(tmp_path / "m", speech_encoder="vec256l9", n_speakers=2, seed=1)
    encoder = make_contentvec_checkpoint(tmp_path / "enc.pt", final_dim=256, seed=2)
    svc = Svc(g_path, config_path, encoder_path=str(encoder))
    session = LiveSession(svc, LiveSettings(speaker=svc.speakers[1], f0_predictor="dio", silence_db=None))
    wav = _sung_48k(1.5)
    out, outs = stream(session, wav, [session.block_samples])
    assert np.all(np.isfinite(out)) and keeps_pace(out, wav, session)
    assert any("vocoder" in o.stages for o in outs)


def test_rvc_voice_streams(tmp_path, shared_dir):
    from rvc_factories import make_rvc_model
    from rvc_pipe_factories import AdaptedContentVec
    from svc_core import Svc

    svc = Svc(make_rvc_model(tmp_path / "v.pth", version="v2", speakers=1), None,
              encoder=AdaptedContentVec(shared_dir, "v2"))
    session = LiveSession(svc, LiveSettings(f0_predictor="dio", silence_db=None))
    wav = _sung_48k(1.0)
    out, _ = stream(session, wav, [session.block_samples])
    assert np.all(np.isfinite(out)) and keeps_pace(out, wav, session)
