"""`python -m bench.live_latency`: the Live page's latency, measured end to end on this machine.

`python app.py` serves in its own process; headless Chromium (Debian's /usr/bin/chromium) opens /live with its fake
microphone playing a sung phrase (examples/singing_slt.flac at 48 kHz, looped) and streams it through the default
starter voice for `--seconds` (60) of played audio. The figures come from the session's own stamps (the server's
JSON-lines log, svc_core.live.stats): end-to-end latency mic to ear (median, p95), inference per block, real-time
factor, underruns (the page's playback worklet), blocks dropped on the server, with the torch thread count and the
machine's load before and after. Writes bench/last_live_latency.json.

    python -m bench.live_latency [--seconds 60] [--block-ms 100] [--extra 0.5] [--buffer-ms 60] [--threads auto]
                                  [--f0 pm] [--out bench/last_live_latency.json]

Targets (issue #24; measured, not asserted): e2e <= 250 ms median, <= 350 ms p95, no underruns. Run it on an idle
machine (the load is printed; above 10 % CPU busy the run is marked "machine NOT idle").
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_JSON = ROOT / "bench" / "last_live_latency.json"
CHROMIUM = "/usr/bin/chromium"
IO_RATE = 48000
START_GUARD_SECONDS = 180  # server start-up and voice loading on a busy box (a hang guard)
TARGET_MEDIAN_MS, TARGET_P95_MS = 250.0, 350.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _busy_percent(window: float = 3.0) -> float:
    import psutil

    return float(psutil.cpu_percent(interval=window))


def _percentile(values: list[float], q: float) -> float | None:
    from svc_core.live.stats import percentile

    return percentile(values, q)


def _mic_wav(folder: Path) -> Path:
    import soundfile as sf
    import soxr

    audio, rate = sf.read(ROOT / "examples" / "singing_slt.flac", dtype="float32", always_2d=True)
    path = folder / "sung_48k.wav"
    sf.write(path, soxr.resample(audio.mean(axis=1), rate, IO_RATE), IO_RATE, subtype="PCM_16")
    return path


def _start_server(work: Path, threads: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "HF_HUB_"))}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--work-dir", str(work),
                             "--threads", threads, "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_GUARD_SECONDS
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited: {proc.stderr.read()}")
        try:
            httpx.get(url + "live", timeout=2)
            return proc, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("app.py did not answer")
            time.sleep(0.5)


def _stream(url: str, wav: Path, args) -> tuple[dict, list[dict]]:
    """Stream through the page; returns (window.liveStats at the end, the session log's records)."""
    import httpx
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required", f"--use-file-for-fake-audio-capture={wav}"])
        page = browser.new_page()
        page.goto(url + "live")
        page.wait_for_function("() => document.querySelector('#voice').options.length > 0",
                               timeout=START_GUARD_SECONDS * 1000)
        page.select_option("#block", str(args.block_ms))
        page.fill("#extra", str(args.extra))
        page.fill("#buffer", str(args.buffer_ms))
        if args.f0:
            page.select_option("#f0", args.f0)
        page.click("#start")
        page.wait_for_function("() => window.liveStats.ready || window.liveStats.errors.length",
                               timeout=START_GUARD_SECONDS * 1000)
        page.wait_for_function("(s) => window.liveStats.client.playedSamples >= s * window.liveStats.rate "
                               "|| window.liveStats.errors.length", arg=args.seconds,
                               timeout=int((args.seconds * 3 + 60) * 1000), polling=500)
        page.wait_for_timeout(1500)  # the last reports
        numbers = page.evaluate("() => JSON.parse(JSON.stringify(window.liveStats))")
        log_url = page.get_attribute("#log-link", "href")
        page.click("#stop")
        page.wait_for_timeout(1000)  # the server writes its final lines
        browser.close()
    text = httpx.get(url + log_url, timeout=30).text
    return numbers, [json.loads(line) for line in text.splitlines() if line.strip()]


def summarise(numbers: dict, records: list[dict]) -> dict:
    blocks = [r for r in records if r.get("type") == "block"]
    start = next(r for r in records if r.get("type") == "start")
    e2e = [b["e2e_ms"] for b in blocks if b.get("e2e_ms") is not None]
    infer = [b["inference_ms"] for b in blocks if not b.get("gated") and b.get("inference_ms") is not None]
    block_ms = start["settings"]["block_seconds"] * 1000.0
    final = next((r for r in reversed(records) if r.get("type") == "summary"), {})
    client = numbers["client"]
    return {
        "blocks_played": len(blocks), "gated_blocks": sum(bool(b.get("gated")) for b in blocks),
        "e2e_median_ms": _percentile(e2e, 50), "e2e_p95_ms": _percentile(e2e, 95),
        "inference_median_ms": _percentile(infer, 50), "inference_p95_ms": _percentile(infer, 95),
        "rtf_median": (_percentile(infer, 50) or 0.0) / block_ms, "rtf_p95": (_percentile(infer, 95) or 0.0) / block_ms,
        "underruns": client["underruns"], "underrun_ms": client["underrunMs"], "skipped_ms": client["skippedMs"],
        "jitter_buffer_end_ms": client.get("bufferMs"), "dropped": final.get("dropped", 0),
        "algorithmic_delay_ms": start["algorithmic_delay_ms"], "torch_threads": start.get("threads"),
        "uplink_median_ms": final.get("uplink_median_ms"), "queue_median_ms": final.get("queue_median_ms"),
        "downlink_median_ms": final.get("downlink_median_ms"), "settings": start["settings"],
        "holdback_median_ms": final.get("holdback_median_ms"), "cost_model": final.get("cost_model"),
        "advice": (final.get("advice") or {}).get("message"),
        "errors": numbers["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="played audio to stream (default 60)")
    parser.add_argument("--block-ms", type=int, default=100, help="block length, ms (the page's choices)")
    parser.add_argument("--extra", type=float, default=0.5, help="left context, s")
    parser.add_argument("--buffer-ms", type=int, default=60, help="the page's jitter buffer, ms")
    parser.add_argument("--threads", default="auto", help="the server's --threads")
    parser.add_argument("--f0", default=None, help="pitch tracker (default: the engine's)")
    parser.add_argument("--out", type=Path, default=OUT_JSON, help="where the JSON goes")
    args = parser.parse_args(argv)
    from bench.__main__ import machine

    load_before, busy_before = os.getloadavg(), _busy_percent()
    idle = busy_before <= 10.0
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; CPU busy {busy_before:.0f}% "
          f"over 3 s{'' if idle else '  (machine NOT idle)'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="svc-live-bench-") as tmp:
        wav = _mic_wav(Path(tmp))
        proc, url = _start_server(Path(tmp) / "work", args.threads)
        try:
            numbers, records = _stream(url, wav, args)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    result = summarise(numbers, records)
    result.update(machine=machine(), cpus=len(os.sched_getaffinity(0)), server_threads_setting=args.threads,
                  loadavg_before=[round(x, 2) for x in load_before], cpu_busy_before_percent=busy_before,
                  loadavg_after=[round(x, 2) for x in os.getloadavg()], idle=idle, seconds=args.seconds,
                  buffer_ms=args.buffer_ms, voice="starter (WORLD voice, default speaker)",
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  targets={"e2e_median_ms": TARGET_MEDIAN_MS, "e2e_p95_ms": TARGET_P95_MS, "underruns": 0})
    fmt = lambda v: "–" if v is None else f"{v:.0f}"  # noqa: E731
    print(f"{result['blocks_played']} blocks of {args.block_ms} ms, extra {args.extra:g} s, buffer {args.buffer_ms} ms, "
          f"torch threads {result['torch_threads']} ({args.threads}), {result['cpus']} CPUs")
    print(f"end-to-end ms: median {fmt(result['e2e_median_ms'])}, p95 {fmt(result['e2e_p95_ms'])} (targets "
          f"{TARGET_MEDIAN_MS:.0f} / {TARGET_P95_MS:.0f})")
    print(f"inference ms per block: median {fmt(result['inference_median_ms'])}, p95 "
          f"{fmt(result['inference_p95_ms'])}; RTF median {result['rtf_median']:.2f}, p95 {result['rtf_p95']:.2f}")
    print(f"underruns {result['underruns']} ({result['underrun_ms']:.0f} ms), dropped {result['dropped']}, skipped "
          f"{result['skipped_ms']:.0f} ms; split (median ms): up {fmt(result['uplink_median_ms'])}, queue "
          f"{fmt(result['queue_median_ms'])}, back+buffer+output {fmt(result['downlink_median_ms'])}, engine delay "
          f"{fmt(result['algorithmic_delay_ms'])}")
    print(f"load average after {result['loadavg_after']}")
    if result["advice"]:
        print("page's advice:", result["advice"])
    if result["errors"]:
        print("page errors:", result["errors"])
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
