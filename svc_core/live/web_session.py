"""One WebSocket connection of the Live page: login and slot checks, the JSON control messages, the PCM blocks,
conversion in a worker thread, stamps and the session log.

Binary frames (little-endian):
    client -> server   uint32 seq, uint32 flags (0), float64 capture_ms (client clock)   | float32 PCM at io_rate
    server -> client   uint32 seq, uint32 flags (bit 0: gated), float64 capture_ms, recv_ms, start_ms, end_ms,
                       send_ms (server clock), float64 delay_ms (engine delay + holdback,
                       stats.py: add it to play - capture for the block's end-to-end latency) | float32 PCM
Text frames are JSON objects with a "type":
    client: start {voice, settings}, settings {settings}, ping {t0}, clock {t0, t1, t2, t3},
            report {played: [[seq, play_ms], ...], underruns, underrun_ms, played_samples, received_samples,
            skipped_ms}, stop
    server: hello {session, log_url, max_session_seconds}, loading {voice}, ready {block_samples, io_rate,
            algorithmic_delay_ms, settings, voice}, pong {t0, t1, t2}, stats {SessionStats.summary()},
            error {message, code}, ended {reason}
A bad message gets an error and the connection goes on; the stream ends on stop, disconnect, the session's time
limit, or an engine failure that is not the user's (logged). Conversion runs in one worker thread per session
(torch's thread count is per thread, svc_core.threads), so the event loop keeps serving every other connection.

The engine side (voice loading, settings, warm-up, the test-only stall $SVC_LIVE_TEST_STALL_MS) is web_engine.py.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import SvcError
from .stats import ClockOffset, SessionLog, SessionStats, prune_logs, server_ms
from .web import KEEP_LOGS, LiveServer
from .web_engine import MAX_IO_RATE, Engine, torch_threads, load_svc, parse_settings, stall_seconds, warm_up

log = logging.getLogger("svc_core.live")

CLIENT_HEADER = struct.Struct("<IId")  # seq, flags, capture_ms: 16 bytes (keeps the PCM 4-byte aligned)
SERVER_HEADER = struct.Struct("<II6d")  # seq, flags, capture, recv, start, end, send, delay: 56 bytes
FLAG_GATED = 1
MAX_BLOCK_SECONDS = 2.0  # a binary frame holds at most this much audio
MAX_TEXT_BYTES = 16 * 1024  # a JSON message longer than this is refused
MAX_BINARY_BYTES = CLIENT_HEADER.size + 4 * int(MAX_IO_RATE * MAX_BLOCK_SECONDS)
QUEUE_BLOCKS = 4  # blocks waiting for conversion; a newer one pushes the oldest out (counted as dropped)
STATS_INTERVAL_SECONDS = 0.5  # the page gets a summary at most this often
SUMMARY_LOG_SECONDS = 5.0  # a summary line in the session log this often
IDLE_SECONDS = 60.0  # a connection that sends nothing for this long is closed
GONE = (WebSocketDisconnect, RuntimeError, OSError)  # sending to a socket the other side closed (uvicorn: OSError)
CLOSE_AUTH, CLOSE_BUSY, CLOSE_ENDED, CLOSE_ERROR = 4401, 4429, 4408, 4500  # WebSocket close codes (4000-4999: ours)


class Connection:
    """The state of one connection (see the module docstring for the protocol)."""

    def __init__(self, ws: WebSocket, server: LiveServer, session_id: str) -> None:
        self.ws, self.server, self.id = ws, server, session_id
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"live-{session_id}")
        self.engine: Engine | None = None
        self.stats: SessionStats | None = None
        self.clock = ClockOffset()  # kept across restarts of the stream
        self.log: SessionLog | None = None
        self.queue: deque = deque()
        self.wake = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.started = time.monotonic()
        self.last_stats = 0.0
        self.last_summary_log = 0.0
        self.closed = False

    # ------------------------------------------------------------------------------------------ sending
    async def send_json(self, message: dict) -> None:
        if self.closed or self.ws.client_state != WebSocketState.CONNECTED:
            return
        async with self.send_lock:
            try:
                await self.ws.send_text(json.dumps(message))
            except GONE:
                self.closed = True

    async def error(self, message: str, code: str = "bad-message") -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # ------------------------------------------------------------------------------------------ control
    async def start(self, message: dict) -> None:
        voice = message.get("voice")
        settings = parse_settings(message.get("settings", {}))
        loop = asyncio.get_running_loop()
        if self.engine is None or self.engine.voice != voice:
            self.server.library.get(str(voice or ""))  # ModelError (listing the voices) before any loading
            await self.send_json({"type": "loading", "voice": voice})
            svc = await loop.run_in_executor(self.executor, load_svc, self.server, str(voice or ""))
        else:
            svc = self.engine.svc
        await self._use(voice, svc, settings)

    async def change(self, message: dict) -> None:
        if self.engine is None:
            raise SvcError("Press Start first: no voice is loaded yet.")
        settings = parse_settings(message.get("settings", {}))
        await self._use(self.engine.voice, self.engine.svc, settings)

    async def _use(self, voice: str, svc: Any, settings) -> None:
        """A new LiveSession for `settings` (made in the worker thread, after the blocks queued before it)."""
        from .session import LiveSession

        loop = asyncio.get_running_loop()
        session = await loop.run_in_executor(self.executor, LiveSession, svc, settings)
        slope = await loop.run_in_executor(self.executor, warm_up, svc, settings)
        threads = await loop.run_in_executor(self.executor, torch_threads)
        self.queue.clear()
        self.engine = Engine(voice, svc, session, stall_seconds())
        delay = float(session.algorithmic_delay_seconds)
        if self.log is None:
            self.log = SessionLog(self.server.log_dir / f"{self.id}.jsonl")
        block_seconds = session.block_samples / settings.io_rate  # whole model hops: a little off the setting
        self.stats = SessionStats(block_seconds, settings.extra_seconds, delay, settings.io_rate,
                                  log=self.log, clock=self.clock, slope=slope)
        self.log.write({"type": "start", "voice": voice, "settings": settings.to_dict(),
                        "block_samples": session.block_samples, "algorithmic_delay_ms": delay * 1000.0,
                        "stall_ms": self.engine.stall_seconds * 1000.0, "threads": threads,
                        "cost_slope": slope})
        await self.send_json({"type": "ready", "voice": voice, "block_samples": session.block_samples,
                              "io_rate": settings.io_rate, "algorithmic_delay_ms": delay * 1000.0,
                              "settings": settings.to_dict(), "threads": threads})

    async def on_text(self, text: str) -> bool:
        """Handle one JSON message; False ends the connection."""
        if len(text) > MAX_TEXT_BYTES:
            await self.error(f"Message too long ({len(text)} characters; at most {MAX_TEXT_BYTES}).", "too-large")
            return True
        try:
            message = json.loads(text)
        except ValueError:
            await self.error("Not JSON: text messages must be JSON objects with a \"type\".")
            return True
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "ping":
                t1 = server_ms()
                await self.send_json({"type": "pong", "t0": message.get("t0"), "t1": t1, "t2": server_ms()})
            elif kind == "clock":
                self.clock.add(*(float(message[k]) for k in ("t0", "t1", "t2", "t3")))
            elif kind == "report":
                await self.on_report(message)
            elif kind == "start":
                await self.start(message)
            elif kind == "settings":
                await self.change(message)
            elif kind == "stop":
                return False
            else:
                await self.error(f"Unknown message type {kind!r}; expected start, settings, ping, clock, report "
                                 "or stop.")
        except SvcError as err:
            await self.error(str(err), "refused")
        except (KeyError, TypeError, ValueError) as err:
            await self.error(f"Malformed {kind} message: {err}.")
        return True

    async def on_report(self, message: dict) -> None:
        if self.stats is None:
            return
        for item in message.get("played", [])[:256]:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                self.stats.played(int(item[0]), float(item[1]))
        self.stats.client_report(message)
        now = time.monotonic()
        if now - self.last_stats >= STATS_INTERVAL_SECONDS:
            self.last_stats = now
            summary = self.stats.summary()
            await self.send_json({"type": "stats", **summary})
            if now - self.last_summary_log >= SUMMARY_LOG_SECONDS:
                self.last_summary_log = now
                self.log.write({"type": "summary", **summary})

    # ------------------------------------------------------------------------------------------ audio
    async def on_block(self, data: bytes) -> None:
        recv = server_ms()
        if self.engine is None:
            await self.error("Send a start message before audio.", "not-started")
            return
        if len(data) > MAX_BINARY_BYTES:
            await self.error(f"Audio block too large ({len(data)} bytes; at most {MAX_BLOCK_SECONDS:g} s).",
                             "too-large")
            return
        if len(data) <= CLIENT_HEADER.size or (len(data) - CLIENT_HEADER.size) % 4:
            await self.error(f"An audio frame is a {CLIENT_HEADER.size}-byte header and float32 samples; got "
                             f"{len(data)} bytes.")
            return
        seq, _flags, capture_ms = CLIENT_HEADER.unpack_from(data)
        longest = int(MAX_BLOCK_SECONDS * self.stats.io_rate)
        if (len(data) - CLIENT_HEADER.size) // 4 > longest:
            await self.error(f"Audio block too long ({(len(data) - CLIENT_HEADER.size) // 4} samples; at most "
                             f"{longest}, {MAX_BLOCK_SECONDS:g} s).", "too-large")
            return
        samples = np.frombuffer(data, dtype="<f4", offset=CLIENT_HEADER.size).astype(np.float32)
        if not np.isfinite(samples).all() or not np.isfinite(capture_ms):
            await self.error("Audio block with non-finite values (NaN or infinity) ignored.")
            return
        stamps = self.stats.received(seq, samples.size, capture_ms, recv)
        if len(self.queue) >= QUEUE_BLOCKS:  # the worker is behind: the oldest block goes, counted
            old, _ = self.queue.popleft()
            self.stats.forget(old)
        self.queue.append((stamps, samples))
        self.wake.set()

    async def worker(self) -> None:
        """Run `convert_queued` until the connection ends; a failure that is not the user's ends the session."""
        try:
            await self.convert_queued()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged in full; the page gets a short message
            log.exception("live session %s: conversion failed", self.id)
            await self.error("The conversion failed on the server (logged); press Start again.", "internal")
            self.closed = True
            await self.ws.close(CLOSE_ERROR)

    async def convert_queued(self) -> None:
        """Convert queued blocks one by one in the worker thread and send each result back."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.queue and not self.closed:
                stamps, samples = self.queue.popleft()
                engine, stats = self.engine, self.stats
                start = server_ms()
                try:
                    out = await loop.run_in_executor(self.executor, engine.process, samples)
                except SvcError as err:
                    await self.error(str(err), "refused")
                    continue
                end = server_ms()
                audio = np.ascontiguousarray(out.audio, dtype="<f4")
                if stats is not self.stats:  # settings changed meanwhile: this block belongs to the old stream
                    continue
                stats.converted(stamps, start, end, bool(out.gated), audio.size, getattr(out, "stages", {}))
                stamps.send_ms = server_ms()
                header = SERVER_HEADER.pack(stamps.seq, FLAG_GATED if out.gated else 0, stamps.capture_ms,
                                            stamps.recv_ms, start, end, stamps.send_ms,
                                            stats.delay_ms + stamps.holdback_ms)
                if self.ws.client_state != WebSocketState.CONNECTED:
                    return
                async with self.send_lock:
                    try:
                        await self.ws.send_bytes(header + audio.tobytes())
                    except GONE:  # the page went away while this block was converting
                        self.closed = True
                        return

    # ------------------------------------------------------------------------------------------ loop
    async def serve(self) -> str:
        """Receive until the end; returns why it ended."""
        limit = self.server.max_session_seconds
        while True:
            left = limit - (time.monotonic() - self.started) if limit else IDLE_SECONDS
            if left <= 0:
                return f"The session reached its time limit ({limit / 60:g} min); press Start to go on."
            try:
                message = await asyncio.wait_for(self.ws.receive(), timeout=min(left, IDLE_SECONDS))
            except asyncio.TimeoutError:
                if limit and time.monotonic() - self.started >= limit:
                    continue  # the limit message above
                return f"Nothing received for {IDLE_SECONDS:g} s; the session was closed."
            if message["type"] == "websocket.disconnect":
                return "disconnected"
            if message.get("bytes") is not None:
                await self.on_block(message["bytes"])
            elif message.get("text") is not None:
                if not await self.on_text(message["text"]):
                    return "stopped"

    async def close(self, reason: str) -> None:
        self.closed = True
        self.wake.set()
        if self.log is not None:
            if self.stats is not None:
                self.log.write({"type": "summary", "final": True, **self.stats.summary()})
            self.log.write({"type": "end", "reason": reason})
            self.log.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


async def run_connection(ws: WebSocket, server: LiveServer, allowed: bool) -> None:
    """Serve one WebSocket until it ends (module docstring); refusals are a JSON error, then a close code."""
    await ws.accept()
    if not allowed:
        await ws.send_text(json.dumps({"type": "error", "code": "auth",
                                       "message": "Not logged in: log in on the main page first."}))
        await ws.close(CLOSE_AUTH)
        return
    if len(server.active) >= server.max_sessions:
        message = (f"All {server.max_sessions} live session(s) of this server are in use; try again in a few "
                   "minutes." if server.max_sessions else "Live streams are switched off on this server.")
        await ws.send_text(json.dumps({"type": "error", "code": "busy", "message": message}))
        await ws.close(CLOSE_BUSY)
        return
    session_id = server.new_id()
    server.active.add(session_id)
    prune_logs(server.log_dir, KEEP_LOGS)
    conn = Connection(ws, server, session_id)
    worker = asyncio.create_task(conn.worker())
    reason = "disconnected"
    try:
        await conn.send_json({"type": "hello", "session": session_id, "log_url": f"live/log/{session_id}",
                              "max_session_seconds": server.max_session_seconds})
        reason = await conn.serve()
        if reason not in ("disconnected", "stopped"):
            await conn.send_json({"type": "ended", "reason": reason})
    except WebSocketDisconnect:
        reason = "disconnected"
    except Exception:  # noqa: BLE001 - a bug in one session must not take the server down; logged in full
        log.exception("live session %s failed", session_id)
        reason = "internal error"
        try:
            await conn.error("The server hit an internal error in this session (logged); press Start again.",
                             "internal")
        except Exception:  # noqa: BLE001 - the socket may be gone already
            pass
    finally:
        server.active.discard(session_id)
        await conn.close(reason)
        worker.cancel()
        if ws.client_state == WebSocketState.CONNECTED:
            try:
                await ws.close(CLOSE_ENDED if reason != "internal error" else CLOSE_ERROR)
            except Exception:  # noqa: BLE001 - already closed by the other side
                pass
