"""`python -m svc_core live` on real PortAudio devices that exist on CI, and the block pump under the test's clock.

Devices used:
- ALSA devices from a config file the test writes (ALSA_CONFIG_PATH = the system alsa.conf + ours): a duplex `file`
  plugin over `null` and a playback-only `asym` device. PortAudio lists and opens them, so listing and the refusals
  (no such device, no input channels) run through the real PortAudio. They have no clock (ALSA's null device
  consumes and produces samples as fast as they are asked for: thousands of seconds of audio a second), so they
  cannot carry a real-time stream.
- A JACK server with its dummy driver (`jackd -d dummy`, Debian package jackd2), which runs in real time on a
  timer: PortAudio's JACK host API opens a real duplex stream on it. The test's own JACK client (JACK-Client;
  bench/live_loopback.py's `jack_server` and `Loopback`) plays a sung clip into the live stream's input port and
  records its output port while `python -m svc_core live` runs the real engine with the starter voice for a few
  seconds. Skipped, saying why, where jackd or JACK-Client is missing (CI installs both).
- The pump's own test drives BlockPump (the same code the device callback and the conversion thread run, minus
  PortAudio) with the test's clock and the real LiveSession.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svc_core.live.device_loop import BlockPump
from svc_core.live.devices import DeviceError, DeviceInfo, format_devices, plan_devices, resolve_device

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "voices" / "starter"
SUNG = REPO / "examples" / "singing_slt.flac"  # 6.6 s sung phrase, 44.1 kHz mono
RATE = 48000  # Hz: the JACK dummy server's rate
STREAM_SECONDS = 6.0
TRANSPOSE = 12.0  # an octave: the output's pitch must be twice the input's
STARTUP_TIMEOUT = 120.0  # s for the CLI to load the voice and open its stream (a loaded CI machine)


def _device(index, name, inputs, outputs, api="ALSA", rate=48000.0) -> DeviceInfo:
    return DeviceInfo(index, name, api, inputs, outputs, rate, 0.01, 0.01)


DEVICES = [_device(0, "USB Mic", 2, 0), _device(1, "Speakers (Realtek)", 0, 2), _device(2, "USB Headset", 1, 2),
           _device(3, "Loopback cable", 2, 2, api="JACK"), _device(4, "Loopback cable", 2, 2, api="ALSA")]


# ------------------------------------------------------------------------------------------ choosing devices
def test_devices_resolve_by_index_name_part_and_default():
    assert resolve_device(0, "input", DEVICES).name == "USB Mic"
    assert resolve_device("2", "output", DEVICES).name == "USB Headset"
    assert resolve_device("speakers (realtek)", "output", DEVICES).index == 1  # whole name, any case
    assert resolve_device("realtek", "output", DEVICES).index == 1  # a unique part
    assert resolve_device("USB", "output", DEVICES).index == 2  # two match, one can play
    assert resolve_device(None, "input", DEVICES, default=2).index == 2


@pytest.mark.parametrize("spec, kind, words", [
    (7, "input", ["No audio device #7", "indexes here are 0..4", "'USB Mic'"]),
    ("loopback cable", "input", ["matches several devices", "(JACK)", "(ALSA)", "--host-api"]),
    ("-1", "output", ["No audio device #-1"]),
    ("nosuch", "input", ["No audio device named 'nosuch'", "--input-device", "#0 'USB Mic' (ALSA)",
                         "--list-devices"]),
    ("usb", "input", ["matches several devices", "'USB Mic'", "'USB Headset'"]),
    ("Speakers", "input", ["has no input channels", "cannot be the input", "#2 'USB Headset'"]),
    (0, "output", ["'USB Mic' (ALSA) has no output channels"]),
])
def test_bad_devices_are_refused_with_the_choices(spec, kind, words):
    with pytest.raises(DeviceError) as err:
        resolve_device(spec, kind, DEVICES)
    for word in words:
        assert word in str(err.value)
    if kind == "input":  # an output-only device is never offered as an input
        assert "Speakers" not in str(err.value).split("devices:")[-1]


def test_host_api_narrows_the_names():
    assert resolve_device("loopback", "input", DEVICES, hostapi="jack").index == 3
    assert resolve_device("loopback", "output", DEVICES, hostapi="ALSA").index == 4
    assert resolve_device(3, "input", DEVICES, hostapi="ALSA").index == 3  # an index is an index
    with pytest.raises(DeviceError, match="No host API 'asio' .--host-api.; here: ALSA, JACK"):
        resolve_device("loopback", "input", DEVICES, hostapi="asio")


def test_no_default_device_says_how_to_pick_one():
    with pytest.raises(DeviceError, match="no default input device here; pick one with --input-device"):
        resolve_device(None, "input", DEVICES, default=-1)


def test_devices_on_two_host_apis_are_refused():
    with pytest.raises(DeviceError, match="different host APIs"):
        plan_devices(0, 3, devices=DEVICES)


def test_device_table_marks_the_defaults():
    table = format_devices(DEVICES, (0, 1)).splitlines()
    assert table[0].split() == ["#", "name", "host", "API", "in", "out", "default", "Hz"]
    assert table[1].startswith(">") and "USB Mic" in table[1]
    assert table[2].lstrip().startswith("<") and "Realtek" in table[2]
    assert "no audio devices" in format_devices([]).lower()


def test_missing_portaudio_says_how_to_install_it(monkeypatch):
    """sounddevice's own import with the library lookup finding no PortAudio (as on a machine without it)."""
    import ctypes.util

    from svc_core.live import devices

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)  # restored afterwards by monkeypatch
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(DeviceError) as err:
        devices.list_devices()
    message = str(err.value)
    assert "PortAudio" in message and "not installed" in message
    assert "apt-get install libportaudio2" in message and "pip install sounddevice==" in message


# ------------------------------------------------------------------------------------------ ALSA devices
ALSA_CONFIG = """
pcm.svcduplex {{
    type plug
    slave {{ pcm "svcfileraw"; format S16_LE; channels 1; rate 48000 }}
}}
pcm.svcfileraw {{
    type file
    slave.pcm "null"
    file "{root}/played.raw"
    format "raw"
}}
pcm.svcplayonly {{
    type asym
    playback.pcm "null"
}}
"""


def _cli(*args: str, env: dict | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svc_core", "live", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def alsa_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("alsa")
    system = Path("/usr/share/alsa/alsa.conf")
    if not system.is_file():
        pytest.skip("ALSA's alsa.conf is not installed (libasound2-data)")
    conf = root / "devices.conf"
    conf.write_text(ALSA_CONFIG.format(root=root))
    env = dict(os.environ, ALSA_CONFIG_PATH=f"{system}:{conf}")
    env.pop("JACK_DEFAULT_SERVER", None)
    env["JACK_NO_START_SERVER"] = "1"
    return env


def test_list_devices_shows_the_alsa_devices(alsa_env):
    run = _cli("--list-devices", env=alsa_env)
    assert run.returncode == 0, run.stderr
    rows = {line.split()[-5]: line.split()[-4:] for line in run.stdout.splitlines() if "svc" in line}
    assert rows["svcduplex"][0] == "ALSA" and int(rows["svcduplex"][1]) > 0 and int(rows["svcduplex"][2]) > 0
    assert rows["svcplayonly"][1] == "0" and int(rows["svcplayonly"][2]) > 0  # playback only: 0 inputs


@pytest.fixture
def alsa_portaudio(alsa_env, monkeypatch):
    """This process's PortAudio re-initialised over the test's ALSA devices (and back afterwards)."""
    import sounddevice

    monkeypatch.setenv("ALSA_CONFIG_PATH", alsa_env["ALSA_CONFIG_PATH"])
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")  # PortAudio's JACK host API must not launch a jackd
    sounddevice._terminate()
    sounddevice._initialize()
    yield sounddevice
    monkeypatch.undo()
    sounddevice._terminate()
    sounddevice._initialize()


@pytest.mark.parametrize("flags, words", [
    (["-i", "svcplayonly", "-o", "svcduplex"], ["'svcplayonly' (ALSA) has no input channels", "'svcduplex'"]),
    (["-i", "99", "-o", "svcduplex"], ["No audio device #99"]),
    (["-i", "svcduplex", "-o", "no-such-card"], ["No audio device named 'no-such-card' (--output-device)"]),
    (["-i", "svcduplex", "-o", "svcduplex", "--device-latency", "soon"], ["--device-latency is 'low', 'high'"]),
])
def test_cli_refuses_bad_devices_before_loading_the_voice(alsa_portaudio, capsys, flags, words):
    from svc_core.cli import main

    assert main(["live", "-m", str(STARTER), *flags, "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err


def test_alsa_devices_resolve_in_process(alsa_portaudio):
    plan = plan_devices("svcduplex", "svcduplex", rate=RATE)
    assert plan.input.name == "svcduplex" and plan.rate == RATE and plan.output_channels == 2
    assert plan.input.hostapi == "ALSA" and plan.input.input_channels > 0


def test_cli_help_names_the_device_flags(capsys):
    from svc_core.cli import main

    with pytest.raises(SystemExit) as done:
        main(["live", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--input-device", "--output-device", "--list-devices", "--block", "--extra", "--crossfade",
                 "--transpose", "--speaker", "--f0", "--silence-db", "--seconds", "--log", "voice folder"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "real-time voice changer" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ the pump, test's clock
@pytest.fixture(scope="module")
def starter_session():
    from svc_core.live import LiveSession, LiveSettings
    from svc_core.starter.evaluation import load_voice

    svc = load_voice(STARTER)
    settings = LiveSettings(block_seconds=0.1, transpose=TRANSPOSE, speaker=next(iter(svc.config.spk)),
                            io_rate=RATE)
    return LiveSession(svc, settings)


def _sung(rate: int = RATE) -> np.ndarray:
    from svc_core.audio import load_audio, resample

    wav, sr = load_audio(str(SUNG))
    return resample(wav, sr, rate).astype(np.float32)


def test_pump_converts_counts_drops_and_underruns_with_the_tests_clock(starter_session):
    """The device side (push_input/pull_output) and the conversion side (step) as PortAudio and the conversion
    thread call them, with the test deciding when each runs."""
    session = starter_session
    session.reset()
    n = session.block_samples
    pump = BlockPump(session.process, n, RATE, max_queued_blocks=2, headroom_samples=0)
    sung = _sung()[RATE:]  # from 1 s in: singing
    assert not pump.pull_output(256).any() and pump.counters.underruns == 0  # waiting to start is no underrun
    pump.push_input(sung[: n // 3])  # callbacks give odd sizes; blocks are cut at n
    pump.push_input(sung[n // 3: 4 * n])  # 4 blocks, queue of 2: the 2 oldest are dropped
    assert pump.counters.blocks_in == 4 and pump.counters.dropped == 2 and pump.input_queued_blocks == 2
    assert pump.step() and pump.step() and not pump.step()
    assert pump.counters.converted == 2
    queued = int(round(pump.output_queued_seconds * RATE))
    assert queued > n // 2  # two blocks in, less the engine's start-up hold-back (up to about a block)
    out = pump.pull_output(queued)
    assert float(np.sqrt(np.mean(out ** 2))) > 0.01  # converted singing, not silence
    assert pump.counters.underruns == 0
    assert not pump.pull_output(64).any() and pump.counters.underruns == 1  # ran dry while playing
    assert pump.pull_output(64).size == 64 and pump.counters.underruns == 1  # counted once, then waits
    record = pump.recent[-1]
    assert record.infer_seconds > 0 and not record.gated and record.level_db > -40
    assert record.wait_seconds >= record.infer_seconds  # it waited in the queue, then was converted
    first = pump.recent[0]
    assert first.held_seconds == pytest.approx(n / RATE)  # before the first output: the first block, all of it
    assert first.backlog_seconds == 0.0  # nothing was queued ahead of it
    # ahead of the second block's output: everything the first returned (nothing was played in between)
    assert record.backlog_seconds == pytest.approx(2 * n / RATE - record.held_seconds)
    assert set(record.to_dict()) >= {"seq", "infer_ms", "rtf", "gated", "level_db", "stages_ms"}


def test_pump_bounds_the_output_backlog(starter_session):
    session = starter_session
    session.reset()
    n = session.block_samples
    pump = BlockPump(session.process, n, RATE, max_queued_blocks=8, max_output_blocks=2.0)
    pump.push_input(_sung()[RATE: RATE + 6 * n])
    while pump.step():
        pass
    assert pump.counters.converted == 6
    assert pump.output_queued_seconds <= 2.0 * n / RATE + 1e-9  # the device stalled: old audio was dropped
    assert pump.counters.dropped >= 3


def test_session_log_advises_a_larger_block_when_too_slow(tmp_path):
    from svc_core.live.device_log import DeviceSessionLog
    from svc_core.live.device_loop import BlockRecord
    from svc_core.live.devices import DeviceStatus

    log = DeviceSessionLog(tmp_path / "s.jsonl", block_seconds=0.1, extra_seconds=0.5)
    for seq in range(20):  # 150 ms per 100 ms block: 130 ms over the 0.6 s window, 20 ms over the block
        log.block(BlockRecord(seq, seq * 0.1, 0.1, 0.15, False, -20.0, 0,
                              {"f0": 0.05, "encoder": 0.08, "vocoder": 0.02}))
    log.block(BlockRecord(20, 2.0, 0.1, 0.001, True, -70.0, 0))  # a gated block: not part of the figures

    def status(elapsed: float) -> DeviceStatus:
        return DeviceStatus(elapsed, 0.4, 0.15, 1.5, 3, 1, -20.0, 21, (0.01, 0.02))

    text = log.advice_text(status(1.0))
    assert "slower than real time" in text and "Try a block of" in text
    assert log.advice_text(status(2.0)) == ""  # not on every line
    log.status(status(2.0))
    summary = log.close(status(2.5))
    assert summary["rtf_median"] == 1.5 and summary["gated_blocks"] == 1 and summary["underruns"] == 3
    assert summary["advice"]["suggested_block_seconds"] > 0.1
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["type"] for r in lines].count("block") == 21 and lines[-1]["type"] == "end"
    assert lines[-2]["type"] == "status" and lines[-2]["underruns"] == 3


# ------------------------------------------------------------------------------------------ JACK: real time
@pytest.fixture(scope="module")
def jack_server(tmp_path_factory):
    from bench.live_loopback import JackMissing, jack_server as start_jack

    try:
        with start_jack(tmp_path_factory.mktemp("jack")) as (client, env):
            yield client, env
    except JackMissing as err:
        pytest.skip(f"no real-time test device: {err}")


def test_cli_refuses_a_rate_the_device_cannot_run(jack_server):
    _, env = jack_server
    run = _cli("-m", str(STARTER), "-i", "system", "-o", "system", "--rate", "44100", env=env, timeout=60)
    assert run.returncode == 2
    assert "refuses 44100 Hz" in run.stderr and f"try --rate {RATE}" in run.stderr


def test_live_cli_converts_a_sung_clip_through_a_real_time_jack_device(jack_server, tmp_path):
    """The sung clip goes into the live stream's input port as the JACK clock runs; what comes out of its output
    port is the starter voice singing it an octave up."""
    from bench.live_loopback import Loopback, live_command

    client, env = jack_server
    sung = _sung()
    log = tmp_path / "live.jsonl"
    loop = Loopback(client, sung, STREAM_SECONDS + 5)
    cli = subprocess.Popen(live_command(STARTER, STREAM_SECONDS, log, "--block", "0.25", "-t", str(TRANSPOSE)),
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loop.connect(cli, timeout=STARTUP_TIMEOUT)
        stdout, stderr = cli.communicate(timeout=STREAM_SECONDS + 60)
    finally:
        if cli.poll() is None:
            cli.kill()
        loop.close()
    assert cli.returncode == 0, stderr[-3000:]
    heard = loop.output()
    sf.write(tmp_path / "heard.wav", heard, RATE)  # kept for a look when it fails
    in_f0, out_f0 = _median_f0(sung[: heard.size]), _median_f0(heard)
    assert out_f0["voiced_seconds"] > 1.0, (out_f0, stderr[-2000:])  # seconds of converted singing came out
    assert abs(out_f0["hz"] / in_f0["hz"] - 2.0) < 0.2, (in_f0, out_f0)  # an octave up: converted, not passed on

    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["converted"] > 0 and summary["inference_median_ms"] > 0
    assert {"underruns", "dropped", "rtf_median", "latency_estimate_median_ms"} <= set(summary)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and "status" in kinds
    assert records[0]["input"]["hostapi"].startswith("JACK") and records[0]["rate"] == RATE
    blocks = [r for r in records if r["type"] == "block"]
    assert len(blocks) == summary["converted"] and any(not b["gated"] for b in blocks)
    assert all(b["held_ms"] >= 250.0 for b in blocks)  # the engine holds at least the 0.25 s block
    assert "latency ~" in stderr and "RTF" in stderr and "underruns" in stderr  # the status line


def test_loopback_measures_a_known_delay():
    """bench.live_loopback's latency measurement finds a delay put in by hand (another voice, same envelope)."""
    from bench.live_loopback import envelope_lag

    sung = _sung()[: 4 * RATE]
    delay = int(0.437 * RATE)
    other = np.sin(2 * np.pi * 2.0 * np.cumsum(np.full(sung.size, 220.0 / RATE))) * np.abs(sung)  # new timbre
    heard = np.concatenate([np.zeros(delay, np.float32), 0.5 * other.astype(np.float32)])
    lag, score = envelope_lag(sung, heard)
    assert lag == pytest.approx(0.437, abs=0.006) and score > 0.8


def test_ctrl_c_stops_the_stream_with_its_summary(jack_server, tmp_path):
    """Without --seconds the stream runs until Ctrl-C (SIGINT), which ends it normally: summary, log, exit 0."""
    from bench.live_loopback import Loopback, live_command

    client, env = jack_server
    log = tmp_path / "live.jsonl"
    command = [part for part in live_command(STARTER, 1.0, log, "--quiet") if part not in ("--seconds", "1")]
    assert "--seconds" not in command
    loop = Loopback(client, _sung(), 30.0)
    cli = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loop.connect(cli, timeout=STARTUP_TIMEOUT)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and '"type":"block"' not in log.read_text():
            time.sleep(0.1)  # the stream is converting
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
        loop.close()
    assert cli.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.strip().splitlines()[-1])["converted"] > 0
    assert json.loads(log.read_text().splitlines()[-1])["type"] == "end"


def _median_f0(wav: np.ndarray) -> dict:
    import parselmouth

    pitch = parselmouth.Sound(wav.astype(np.float64), RATE).to_pitch(time_step=0.01, pitch_floor=60.0,
                                                                       pitch_ceiling=1200.0)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    return {"hz": float(np.median(voiced)) if voiced.size else 0.0, "voiced_seconds": voiced.size * 0.01}
