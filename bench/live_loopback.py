"""`python -m bench.live_loopback`: a loopback latency test of `python -m svc_core live` on a real-time device.

A JACK server with its dummy driver (`jackd -d dummy`, Debian package jackd2: a sound card that runs on a timer,
so it works on a machine without one) carries the stream; this script's own JACK client (JACK-Client) plays a sung
clip, looped, into the live stream's input port and records its output port on the same clock. The latency is
measured, not estimated: the lag that best lines up the loudness envelope (dB, 5 ms hops) of what went in with
what came out. It is printed beside the CLI's own estimate (the log's median), the conversion time per block,
the real-time factor, underruns and drops, with the machine's load and thread count.

    python -m bench.live_loopback [--seconds 60] [--blocks 0.1,0.2] [--voice voices/starter] [--json PATH]

tests/live/test_live_devices.py uses `jack_server` and `Loopback` for its end-to-end test.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SUNG = ROOT / "examples" / "singing_slt.flac"  # 6.6 s sung phrase
RATE = 48000  # Hz, the JACK server's rate
JACK_PERIOD = 512  # frames per JACK cycle (10.7 ms at 48 kHz)
START_TIMEOUT = 20.0  # s for jackd to accept clients
OPEN_TIMEOUT = 120.0  # s for the CLI to load its voice and open its ports
ENVELOPE_HOP = 240  # samples (5 ms at 48 kHz)
MAX_LAG_SECONDS = 3.0  # longest latency searched for
FLOOR_DB = -60.0  # envelope floor


class JackMissing(RuntimeError):
    """jackd or the JACK-Client package is not installed."""


@contextlib.contextmanager
def jack_server(log_dir: Path, name: Optional[str] = None) -> Iterator[tuple[object, dict]]:
    """A private jackd (dummy driver, RATE Hz, one in / one out): yields (a jack.Client on it, the environment for
    processes that should use it)."""
    try:
        import jack
    except ImportError as err:
        raise JackMissing(f"JACK-Client is not installed ({err}): pip install -r requirements-dev.txt") from err
    if shutil.which("jackd") is None:
        raise JackMissing("jackd is not installed: apt-get install jackd2")
    name = name or f"svc-live-{os.getpid()}"
    log = log_dir / "jackd.log"
    with open(log, "w") as out:
        server = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(RATE), "-p",
                                   str(JACK_PERIOD), "-C", "1", "-P", "1"], stdout=out, stderr=out)
    client = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while client is None and time.monotonic() < deadline and server.poll() is None:
            try:
                client = jack.Client("svc-loopback", servername=name, no_start_server=True)
            except jack.JackOpenError:
                time.sleep(0.2)
        if client is None:
            raise RuntimeError(f"jackd did not start: {log.read_text()[-2000:]}")
        yield client, dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    finally:
        if client is not None:
            client.close()
        server.terminate()
        server.wait(timeout=10)


class Loopback:
    """Plays `signal` (float32 [N] at RATE, looped when `loop`) into another client's input port and records its
    output port, from the same JACK cycle on."""

    def __init__(self, client, signal: np.ndarray, max_seconds: float, loop: bool = False) -> None:
        self.client, self.signal, self.loop = client, signal, loop
        self.recorded = np.zeros(int(max_seconds * RATE), np.float32)
        self.played = 0
        self.kept = 0
        self.running = False
        self.source = client.outports.register("to-live")
        self.sink = client.inports.register("from-live")
        client.set_process_callback(self._process)
        client.activate()

    def _process(self, frames: int) -> None:
        buffer = self.source.get_array()
        buffer[:] = 0.0
        if not self.running:
            return
        pos = self.played % self.signal.size if self.loop else self.played
        chunk = self.signal[pos:pos + frames]
        buffer[:chunk.size] = chunk
        if self.loop and chunk.size < frames:
            buffer[chunk.size:] = self.signal[:frames - chunk.size]
        self.played += frames
        take = max(0, min(frames, self.recorded.size - self.kept))
        self.recorded[self.kept:self.kept + take] = self.sink.get_array()[:take]
        self.kept += take

    def connect(self, process: subprocess.Popen, prefix: str = "PortAudio", timeout: float = OPEN_TIMEOUT) -> None:
        """Wait for the process's ports (PortAudio's JACK client), wire them to ours, start playing."""
        deadline = time.monotonic() + timeout
        ports: list = []
        while time.monotonic() < deadline and process.poll() is None:
            ports = [p for p in self.client.get_ports(prefix) if p.is_audio]
            if any(p.is_input for p in ports) and any(p.is_output for p in ports):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the live stream did not open its JACK ports (it ended or took too long)")
        self.client.connect(self.source, next(p for p in ports if p.is_input))
        self.client.connect(next(p for p in ports if p.is_output), self.sink)
        self.running = True

    def output(self) -> np.ndarray:
        return self.recorded[:self.kept].copy()

    def close(self) -> None:
        """Stop, and free the port names for the next Loopback on the same client."""
        self.client.deactivate()
        self.source.unregister()
        self.sink.unregister()


def envelope_db(wav: np.ndarray) -> np.ndarray:
    """Loudness envelope, dB per ENVELOPE_HOP samples (RMS over 4 hops), floored at FLOOR_DB."""
    frames = wav[: wav.size // ENVELOPE_HOP * ENVELOPE_HOP].reshape(-1, ENVELOPE_HOP)
    power = np.convolve((frames.astype(np.float64) ** 2).mean(axis=1), np.ones(4) / 4, mode="same")
    return np.maximum(10 * np.log10(power + 1e-12), FLOOR_DB)


def envelope_lag(sent: np.ndarray, heard: np.ndarray) -> tuple[float, float]:
    """(seconds, correlation): the delay of `heard` after `sent` that lines their envelopes up best."""
    a, b = envelope_db(sent), envelope_db(heard)
    best, score = 0, -1.0
    for lag in range(0, min(b.size, int(MAX_LAG_SECONDS * RATE / ENVELOPE_HOP))):
        n = min(a.size, b.size - lag)
        if n < a.size // 2:
            break
        x, y = a[:n] - a[:n].mean(), b[lag:lag + n] - b[lag:lag + n].mean()
        r = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
        if r > score:
            best, score = lag, r
    return best * ENVELOPE_HOP / RATE, score


def sung_clip() -> np.ndarray:
    sys.path.insert(0, str(ROOT))
    from svc_core.audio import load_audio, resample

    wav, sr = load_audio(str(SUNG))
    return resample(wav, sr, RATE).astype(np.float32)


def live_command(voice: Path, seconds: float, log: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "svc_core", "live", "-m", str(voice), "-i", "system", "-o", "system",
            "--seconds", f"{seconds:g}", "--log", str(log), *extra]


def run_one(client, env: dict, voice: Path, seconds: float, block: float, workdir: Path) -> dict:
    """One live run over the loopback: measured lag, the CLI's summary, its last status line."""
    sung = sung_clip()
    log = workdir / f"live_{block:g}.jsonl"
    loop = Loopback(client, sung, seconds + 10, loop=True)
    process = subprocess.Popen(live_command(voice, seconds, log, "--block", f"{block:g}", "--quiet"), cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loop.connect(process)
        out, err = process.communicate(timeout=seconds + 120)
    finally:
        if process.poll() is None:
            process.kill()
        loop.close()
    if process.returncode != 0:
        raise RuntimeError(f"live failed: {err[-2000:]}")
    heard = loop.output()
    sent = np.resize(sung, heard.size)  # what was played, looped, over the same span
    lag, score = envelope_lag(sent, heard)
    summary = json.loads(out.strip().splitlines()[-1])
    start = json.loads(log.read_text().splitlines()[0])
    return {"block_s": block, "threads": start.get("threads"), "measured_latency_ms": round(lag * 1000, 1), "envelope_correlation": round(score, 3),
            **{k: summary.get(k) for k in ("latency_estimate_median_ms", "inference_median_ms", "inference_p95_ms",
                                           "rtf_median", "underruns", "dropped", "converted", "gated_blocks")}}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--blocks", default="0.1,0.2", help="block sizes, s, comma-separated")
    parser.add_argument("--voice", default=str(ROOT / "voices" / "starter"))
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, jack_server(Path(tmp)) as (client, env):
        for block in (float(b) for b in args.blocks.split(",")):
            load = os.getloadavg()[0]
            row = run_one(client, env, Path(args.voice), args.seconds, block, Path(tmp))
            rows.append({**row, "load_1min_before": round(load, 2), "cpus": os.cpu_count()})
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
