"""The Live page's server side on a real app server (in this process, as tests/web does) with the real engine and
the shipped starter voice: the WebSocket protocol (blocks in, converted audio of the right length out, stamps,
clock pings, stats, the session log), the login on the page and the socket, and the limits (sessions at once,
oversized and garbage messages answered with a JSON error while the server keeps serving)."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from svc_core.ui import offline

offline.apply()

ROOT = Path(__file__).resolve().parents[2]
IO_RATE = 48000
SPEAKER = "flite_slt"  # the starter voice has four: the engine asks for one
CLIENT_HEADER = struct.Struct("<IId")
SERVER_HEADER = struct.Struct("<II6d")
RECV_GUARD_SECONDS = 120  # hang guard for one message (a busy 2-core box loading a voice), not a timing


def sung_48k(seconds: float) -> np.ndarray:
    """The first `seconds` of examples/singing_slt.flac at 48 kHz, mono float32."""
    import soundfile as sf

    import soxr

    audio, rate = sf.read(ROOT / "examples" / "singing_slt.flac", dtype="float32", always_2d=True)
    audio = soxr.resample(audio.mean(axis=1), rate, IO_RATE)
    return np.ascontiguousarray(audio[: int(seconds * IO_RATE)], dtype=np.float32)


def start_live_server(tmp: Path, **overrides):
    """The app on the starter voices (voices/starter first: the default), served on a free loopback port."""
    from app_process import free_port
    from svc_core.ui.server import build_app, launch_kwargs
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    settings = AppSettings(port=free_port(), models_dir=tmp / "models", work_dir=tmp / "work", quiet=True,
                           shipped_voices=(STARTER_VOICES,), **overrides).resolve()
    demo, state = build_app(settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
    return demo, state, url.rstrip("/") + "/"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    demo, state, url = start_live_server(tmp_path_factory.mktemp("live"), max_live_sessions=2)
    yield url, state
    demo.close()


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "live/ws"


def recv_json(ws) -> dict:
    message = ws.recv(timeout=RECV_GUARD_SECONDS)
    assert isinstance(message, str), "expected a JSON message, got audio"
    return json.loads(message)


def recv_until(ws, kind: str) -> dict:
    while True:
        message = recv_json(ws)
        if message["type"] == kind:
            return message
        assert message["type"] != "error", message


def start_stream(ws, **settings) -> dict:
    hello = recv_json(ws)
    assert hello["type"] == "hello"
    ws.send(json.dumps({"type": "start", "voice": "starter", "settings": {"io_rate": IO_RATE, "speaker": SPEAKER,
                                                                        **settings}}))
    return recv_until(ws, "ready")


def block_frame(seq: int, samples: np.ndarray, capture_ms: float = 0.0) -> bytes:
    return CLIENT_HEADER.pack(seq, 0, capture_ms) + samples.astype("<f4").tobytes()


def test_voices_list_the_starter_voice(live):
    url, _ = live
    body = httpx.get(url + "live/voices").json()
    starter = body["voices"][0]
    assert body["default_voice"] == "starter" and starter["family"] == "world"
    assert "flite_slt" in starter["speakers"]
    assert body["defaults"]["block_seconds"] > 0 and body["defaults"]["io_rate"] == IO_RATE
    page = httpx.get(url + "live")
    assert page.status_code == 200 and "live/static/live.js" in page.text
    assert httpx.get(url + "live/static/playback-worklet.js").status_code == 200
    assert httpx.get(url + "live/static/..%2Fweb.py").status_code == 404


def test_blocks_in_converted_audio_out(live):
    url, state = live
    audio = sung_48k(3.0)
    with connect(ws_url(url), max_size=2**22) as ws:
        ready = start_stream(ws)
        n = ready["block_samples"]
        assert abs(n - ready["settings"]["block_seconds"] * IO_RATE) < 0.02 * IO_RATE  # whole model hops
        blocks = len(audio) // n
        out, headers = [], []
        for seq in range(blocks):  # one at a time: nothing is dropped, every block comes back
            ws.send(block_frame(seq, audio[seq * n:(seq + 1) * n], capture_ms=1000.0 + seq))
            reply = ws.recv(timeout=RECV_GUARD_SECONDS)
            assert isinstance(reply, bytes)
            header = SERVER_HEADER.unpack_from(reply)
            headers.append(header)
            out.append(np.frombuffer(reply, dtype="<f4", offset=SERVER_HEADER.size))
        ws.send(json.dumps({"type": "ping", "t0": 5.0}))
        pong = recv_json(ws)
        ws.send(json.dumps({"type": "clock", "t0": 5.0, "t1": pong["t1"], "t2": pong["t2"], "t3": 7.0}))
        ws.send(json.dumps({"type": "report", "played": [[seq, 1200.0 + seq] for seq in range(blocks)],
                            "underruns": 0, "played_samples": 123}))
        stats = recv_until(ws, "stats")
    # every block back, in order, with its stamps in order on the server's clock; the delay to add to play -
    # capture is the engine's own plus the input it held when the block went in (svc_core.live.stats)
    assert [h[0] for h in headers] == list(range(blocks))
    given = returned = 0
    delays = []
    for (seq, _flags, capture, recv, start, end, send, delay), o in zip(headers, out):
        assert capture == 1000.0 + seq and recv <= start <= end <= send
        held_ms = (given - returned) * 1000.0 / IO_RATE
        assert delay == pytest.approx(ready["algorithmic_delay_ms"] + held_ms)
        if len(o):  # an empty output is not played, so not in the e2e summary
            delays.append(delay)
        given, returned = given + n, returned + len(o)
    # nothing lost: out == in less what the engine holds (at most a model block and its resamplers' few ms)
    total_in, total_out = blocks * n, sum(len(o) for o in out)
    assert total_in - n - 0.01 * IO_RATE <= total_out <= total_in
    joined = np.concatenate(out)
    assert np.isfinite(joined).all()
    assert np.sqrt(np.mean(joined[len(joined) // 3:] ** 2)) > 1e-3  # a sung phrase in, a voice out
    assert pong["t1"] <= pong["t2"]
    assert stats["blocks"] == blocks  # an empty output (input held by the engine) is not waited for to play
    assert stats["played_blocks"] == sum(len(o) > 0 for o in out) >= blocks - 2
    assert stats["e2e_median_ms"] == pytest.approx(200.0 + float(np.median(delays)), abs=0.2)
    assert stats["inference_median_ms"] > 0 and stats["dropped"] == 0
    assert stats["cost_model"]["calibrated"] and stats["cost_model"]["slope"] >= 0  # measured at warm-up


def test_session_log_is_downloadable(live):
    url, state = live
    with connect(ws_url(url)) as ws:
        hello = recv_json(ws)
        ws.send(json.dumps({"type": "start", "voice": "starter", "settings": {"io_rate": IO_RATE, "speaker": SPEAKER}}))
        n = recv_until(ws, "ready")["block_samples"]
        audio = sung_48k(1.0)
        for seq in range(3):
            ws.send(block_frame(seq, audio[seq * n:(seq + 1) * n], capture_ms=100.0 * seq))
            ws.recv(timeout=RECV_GUARD_SECONDS)
        ws.send(json.dumps({"type": "report", "played": [[seq, 300.0 + 100.0 * seq] for seq in range(3)]}))
        recv_until(ws, "stats")
        ws.send(json.dumps({"type": "stop"}))
    deadline = time.monotonic() + RECV_GUARD_SECONDS
    while True:  # the server writes the final lines when it sees the stop
        lines = httpx.get(url + hello["log_url"]).text.splitlines()
        if lines and json.loads(lines[-1])["type"] == "end" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    records = [json.loads(line) for line in lines]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and "block" in kinds and kinds[-1] == "end"
    block = records[kinds.index("block")]
    assert block["seq"] in (0, 1, 2) and block["e2e_ms"] is not None and block["inference_ms"] > 0
    assert httpx.get(url + "live/log/0123456789abcdef").status_code == 404
    assert httpx.get(url + "live/log/..%2F..%2Fsvc-studio.lock").status_code == 404


def test_bad_messages_get_errors_and_the_stream_goes_on(live):
    url, _ = live
    n = 4800
    with connect(ws_url(url), max_size=2**22) as ws:
        assert recv_json(ws)["type"] == "hello"
        ws.send(block_frame(0, np.zeros(n, np.float32)))  # audio before start
        assert recv_json(ws)["code"] == "not-started"
        for garbage in ("not json", json.dumps([1, 2]), json.dumps({"type": "dance"}),
                        json.dumps({"type": "clock", "t0": "x"}), "x" * 20000,
                        json.dumps({"type": "start", "voice": "starter", "settings": {"block_secs": 1}}),
                        json.dumps({"type": "start", "voice": "nobody", "settings": {}})):
            ws.send(garbage)
            reply = recv_json(ws)
            assert reply["type"] == "error" and reply["message"], garbage[:40]
        ready = start_stream_after_hello(ws)
        n = ready["block_samples"]
        for frame in (b"\x00" * 7, b"\x00" * (CLIENT_HEADER.size + 6), block_frame(1, np.full(n, np.nan, np.float32)),
                      block_frame(2, np.zeros(2 * IO_RATE + 4, np.float32))):
            ws.send(frame)
            assert recv_json(ws)["type"] == "error"
        ws.send(block_frame(3, sung_48k(1.0)[:n]))  # and a good block still converts
        reply = ws.recv(timeout=RECV_GUARD_SECONDS)
        assert isinstance(reply, bytes) and SERVER_HEADER.unpack_from(reply)[0] == 3


def start_stream_after_hello(ws) -> dict:
    ws.send(json.dumps({"type": "start", "voice": "starter", "settings": {"io_rate": IO_RATE, "speaker": SPEAKER}}))
    return recv_until(ws, "ready")


def test_sessions_at_once_are_limited(live):
    url, state = live
    assert state.live.max_sessions == 2
    with connect(ws_url(url)) as first, connect(ws_url(url)) as second:
        assert recv_json(first)["type"] == "hello" and recv_json(second)["type"] == "hello"
        with connect(ws_url(url)) as third:
            refusal = recv_json(third)
            assert refusal["code"] == "busy" and "2 live session" in refusal["message"]
    deadline = time.monotonic() + RECV_GUARD_SECONDS
    while state.live.active and time.monotonic() < deadline:  # the server notices the closes
        time.sleep(0.1)
    with connect(ws_url(url)) as again:
        assert recv_json(again)["type"] == "hello"


def test_login_is_needed_for_page_and_socket(tmp_path):
    demo, state, url = start_live_server(tmp_path, auth=(("singer", "s3cret"),))
    try:
        assert httpx.get(url + "live").status_code == 401
        assert httpx.get(url + "live/voices").status_code == 401
        with connect(ws_url(url)) as ws:  # no cookie
            assert recv_json(ws)["code"] == "auth"
        cookie_id = demo.server_app.cookie_id
        wrong = {"Cookie": f"access-token-unsecure-{cookie_id}=not-a-token"}
        with connect(ws_url(url), additional_headers=wrong) as ws:
            assert recv_json(ws)["code"] == "auth"
        login = httpx.post(url + "login", data={"username": "singer", "password": "s3cret"})
        assert login.status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        assert httpx.get(url + "live", headers={"Cookie": cookie}).status_code == 200
        assert httpx.get(url + "live/voices", headers={"Cookie": cookie}).json()["voices"]
        with connect(ws_url(url), additional_headers={"Cookie": cookie}) as ws:
            assert recv_json(ws)["type"] == "hello"
        assert any(k.startswith("access-token") for k in login.cookies)
    finally:
        demo.close()


def test_live_limits_on_the_command_line():
    from svc_core.ui.settings import SettingsError, parse_args

    settings = parse_args(["--max-live-sessions", "3", "--max-live-minutes", "5"])
    assert settings.max_live_sessions == 3 and settings.max_live_minutes == 5.0
    assert parse_args([]).max_live_sessions == 2
    for bad in (["--max-live-sessions", "-1"], ["--max-live-minutes", "-2"], ["--max-live-minutes", "nan"]):
        with pytest.raises(SettingsError, match="--max-live"):
            parse_args(bad)


def test_live_streams_switched_off(tmp_path):
    demo, state, url = start_live_server(tmp_path, max_live_sessions=0)
    try:
        with connect(ws_url(url)) as ws:
            refusal = recv_json(ws)
            assert refusal["code"] == "busy" and "switched off" in refusal["message"]
    finally:
        demo.close()


def test_a_session_ends_at_its_time_limit(tmp_path):
    demo, state, url = start_live_server(tmp_path, max_live_minutes=0.02)  # 1.2 s
    try:
        with connect(ws_url(url)) as ws:
            assert recv_json(ws)["type"] == "hello"
            ended = recv_until(ws, "ended")
            assert "time limit" in ended["reason"]
    finally:
        demo.close()


def envelope_lag_ms(x: np.ndarray, y: np.ndarray, longest_ms: float = 500.0) -> float:
    """The lag (ms, >= 0) of y behind x that lines up their log RMS envelopes (10 ms windows) best."""
    def envelope(sig):
        env = np.log(np.sqrt(np.convolve(sig ** 2, np.ones(480) / 480, "same")) + 1e-3)
        return env - env.mean()

    ex, ey = envelope(x), envelope(y)
    lags = np.arange(0, int(longest_ms * IO_RATE / 1000), 24)
    scores = [float(np.dot(ex[:len(ex) - lag], ey[lag:])) for lag in lags]
    return float(lags[int(np.argmax(scores))]) * 1000.0 / IO_RATE


def test_stamped_delay_matches_the_heard_lag(live):
    """The delay the server stamps (engine delay + held input) against the lag of the converted sound itself:
    output blocks laid back to back from the input block they answer (as the page plays them), the envelope of
    the converted phrase lags the input's by the stamped delay (within 40 ms: a converted voice's envelope is not
    its input's; leaving out the held input would be off by about a block)."""
    url, _ = live
    audio = sung_48k(5.0)
    with connect(ws_url(url), max_size=2**22) as ws:
        n = start_stream(ws, silence_db=None)["block_samples"]
        blocks = len(audio) // n
        placed = np.zeros((blocks + 2) * n, np.float32)
        delays = []
        for seq in range(blocks):
            ws.send(block_frame(seq, audio[seq * n:(seq + 1) * n]))
            reply = ws.recv(timeout=RECV_GUARD_SECONDS)
            o = np.frombuffer(reply, dtype="<f4", offset=SERVER_HEADER.size)
            placed[seq * n:seq * n + len(o)] = o  # output block k starts where input block k started
            delays.append(SERVER_HEADER.unpack_from(reply)[7])
    heard = envelope_lag_ms(audio[:blocks * n], placed[:blocks * n])
    print(f"heard lag {heard:.1f} ms, stamped delay median {np.median(delays):.1f} ms")
    assert heard == pytest.approx(float(np.median(delays)), abs=40.0)
