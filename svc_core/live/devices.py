"""Local audio devices for the live voice changer: listing, validation with human messages, and a sounddevice
(PortAudio) duplex stream around a LiveSession.

The stream runs at the device's rate (the session's io_rate is set to it). Its callback never waits for the
model: it hands input to a `BlockPump` and takes whatever converted audio is ready (svc_core.live.device_loop);
a conversion thread runs the session. Once a second the runner reports a `DeviceStatus` (latency estimate,
conversion time per block, real-time factor, underruns, drops, input level).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional


from ..errors import OptionError, SvcError
from .device_loop import DEFAULT_HEADROOM_SECONDS, BlockPump

SOUNDDEVICE_PIN = "sounddevice==0.5.6"
INSTALL_HELP = ("Install PortAudio: Debian/Ubuntu `apt-get install libportaudio2`, Fedora `dnf install portaudio`, "
                f"macOS `brew install portaudio` (the Windows and macOS wheels of sounddevice bundle it); then "
                f"`pip install {SOUNDDEVICE_PIN}`.")
LATENCIES = ("low", "high")  # PortAudio's suggested device latency presets
STATUS_PERIOD_SECONDS = 1.0  # one status line a second
POLL_SECONDS = 0.05  # how often the runner checks the clock and the conversion thread, s
MAX_HEADROOM_SECONDS = 1.0  # upper bound of --headroom, s
OUTPUT_CHANNELS_MAX = 2  # the mono conversion is copied to at most this many output channels


class DeviceError(OptionError):
    """An audio device that is missing, cannot record / play, or refuses the settings; or no PortAudio."""


def sounddevice_module():
    """The sounddevice module, or a DeviceError saying how to install PortAudio / sounddevice."""
    try:
        import sounddevice
    except OSError as err:  # sounddevice raises OSError when libportaudio is not found
        raise DeviceError(f"PortAudio (the audio device library) is not installed: {err}. {INSTALL_HELP}") from err
    except ImportError as err:
        raise DeviceError(f"The sounddevice package is missing ({err}). {INSTALL_HELP}") from err
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    input_channels: int
    output_channels: int
    default_rate: float  # Hz
    low_input_latency: float  # s, PortAudio's default low latency for input
    low_output_latency: float  # s

    def label(self) -> str:
        return f"#{self.index} '{self.name}' ({self.hostapi})"


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio sees, in its index order."""
    sd = sounddevice_module()
    apis = [a["name"] for a in sd.query_hostapis()]
    return [DeviceInfo(index=i, name=d["name"], hostapi=apis[d["hostapi"]],
                       input_channels=int(d["max_input_channels"]), output_channels=int(d["max_output_channels"]),
                       default_rate=float(d["default_samplerate"]),
                       low_input_latency=float(d["default_low_input_latency"]),
                       low_output_latency=float(d["default_low_output_latency"]))
            for i, d in enumerate(sd.query_devices())]


def default_indexes() -> tuple[int, int]:
    """PortAudio's default (input, output) device indexes; -1 where there is none."""
    sd = sounddevice_module()
    pair = sd.default.device
    result = []
    for kind, value in zip(("input", "output"), pair):
        if value is None or int(value) < 0:
            try:
                value = sd.query_devices(kind=kind)["index"]
            except Exception:
                value = -1
        result.append(int(value))
    return result[0], result[1]


def format_devices(devices: list[DeviceInfo], defaults: tuple[int, int] = (-1, -1)) -> str:
    """A table of devices; '>' marks the default input, '<' the default output."""
    if not devices:
        return "No audio devices found (PortAudio sees none: no sound card, or no access to it)."
    rows = [("", "#", "name", "host API", "in", "out", "default Hz")]
    for d in devices:
        mark = (">" if d.index == defaults[0] else " ") + ("<" if d.index == defaults[1] else " ")
        rows.append((mark, str(d.index), d.name, d.hostapi, str(d.input_channels), str(d.output_channels),
                     f"{d.default_rate:g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + ["(> default input, < default output)"])


def _channels(device: DeviceInfo, kind: str) -> int:
    return device.input_channels if kind == "input" else device.output_channels


def _names(devices: list[DeviceInfo], kind: str) -> str:
    usable = [d.label() for d in devices if _channels(d, kind) > 0]
    return ", ".join(usable) if usable else f"none: this machine has no {kind} device"


def resolve_device(spec: Optional[str | int], kind: str, devices: Optional[list[DeviceInfo]] = None,
                   default: Optional[int] = None, hostapi: Optional[str] = None) -> DeviceInfo:
    """The device for `--input-device` / `--output-device`: an index, a name, a unique part of a name, or None for
    PortAudio's default. kind: 'input' or 'output'. hostapi: names are looked up among that host API's devices
    only (a part of its name, any case: the same card is listed once per host API on Windows and macOS).
    Refuses, with the usable choices, what cannot do `kind`."""
    if kind not in ("input", "output"):
        raise ValueError(kind)
    devices = list_devices() if devices is None else devices
    flag = f"--{kind}-device"
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        index = default_indexes()[0 if kind == "input" else 1] if default is None else default
        if index < 0 or index >= len(devices):
            raise DeviceError(f"There is no default {kind} device here; pick one with {flag} (index or name). "
                              f"{kind.capitalize()} devices: {_names(devices, kind)}.")
        device = devices[index]
    elif isinstance(spec, int) or str(spec).strip().lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < len(devices):
            span = f"0..{len(devices) - 1}" if devices else "none"
            raise DeviceError(f"No audio device #{index} ({flag}): the indexes here are {span}. "
                              f"{kind.capitalize()} devices: {_names(devices, kind)}.")
        device = devices[index]
    else:
        device = _by_name(str(spec).strip(), kind, _on_hostapi(devices, hostapi), flag)
    if _channels(device, kind) < 1:
        raise DeviceError(f"{device.label()} has no {kind} channels, so it cannot be the {kind} ({flag}). "
                          f"{kind.capitalize()} devices: {_names(devices, kind)}.")
    return device


def _on_hostapi(devices: list[DeviceInfo], hostapi: Optional[str]) -> list[DeviceInfo]:
    if not hostapi:
        return devices
    chosen = [d for d in devices if hostapi.casefold() in d.hostapi.casefold()]
    if not chosen:
        apis = sorted({d.hostapi for d in devices})
        raise DeviceError(f"No host API '{hostapi}' (--host-api); here: {', '.join(apis) or 'none'}.")
    return chosen


def _by_name(name: str, kind: str, devices: list[DeviceInfo], flag: str) -> DeviceInfo:
    wanted = name.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    found = exact or [d for d in devices if wanted in d.name.casefold()]
    if len(found) > 1:  # prefer the ones that can do the job, then say which are left
        able = [d for d in found if _channels(d, kind) > 0]
        found = able or found
    if not found:
        raise DeviceError(f"No audio device named '{name}' ({flag}). {kind.capitalize()} devices: "
                          f"{_names(devices, kind)}. `python -m svc_core live --list-devices` lists them all.")
    if len(found) > 1:
        hint = " or pick the host API with --host-api" if len({d.hostapi for d in found}) > 1 else ""
        raise DeviceError(f"'{name}' matches several devices ({flag}): {', '.join(d.label() for d in found)}; "
                          f"give the index or more of the name{hint}.")
    return found[0]


@dataclass(frozen=True)
class DevicePlan:
    """Checked devices and stream settings."""

    input: DeviceInfo
    output: DeviceInfo
    rate: int  # Hz, the stream's (and the session's io_rate)
    output_channels: int
    latency: str  # 'low' / 'high' (PortAudio presets) or seconds as text
    headroom_seconds: float = DEFAULT_HEADROOM_SECONDS  # converted audio held in hand before playback, s


def plan_devices(input_spec: Optional[str | int], output_spec: Optional[str | int], rate: Optional[int] = None,
                 latency: str = "low", devices: Optional[list[DeviceInfo]] = None,
                 headroom_seconds: float = DEFAULT_HEADROOM_SECONDS, hostapi: Optional[str] = None) -> DevicePlan:
    """Resolve both devices (names on `hostapi` only, if given) and check that PortAudio can open them together
    at `rate` (default: the input device's default rate)."""
    devices = list_devices() if devices is None else devices
    defaults = default_indexes() if (input_spec is None or output_spec is None) else (-1, -1)
    src = resolve_device(input_spec, "input", devices, defaults[0] if input_spec is None else None, hostapi)
    dst = resolve_device(output_spec, "output", devices, defaults[1] if output_spec is None else None, hostapi)
    if src.hostapi != dst.hostapi:
        raise DeviceError(f"The input {src.label()} and the output {dst.label()} are on different host APIs; "
                          "PortAudio opens one duplex stream on one host API: pick both devices from the same one "
                          "(see --list-devices).")
    if latency not in LATENCIES:
        try:
            if float(latency) <= 0:
                raise ValueError
        except ValueError:
            raise OptionError(f"--device-latency is 'low', 'high' or seconds > 0; got '{latency}'.") from None
    if not 0.0 <= headroom_seconds <= MAX_HEADROOM_SECONDS:
        raise OptionError(f"--headroom is 0..{MAX_HEADROOM_SECONDS:g} s; got {headroom_seconds:g}.")
    chosen = int(round(rate if rate else src.default_rate))
    if chosen <= 0:
        raise OptionError(f"--rate must be a positive sample rate in Hz; got {rate}.")
    out_channels = min(OUTPUT_CHANNELS_MAX, dst.output_channels)
    sd = sounddevice_module()
    for device, kind, check, channels in ((src, "input", sd.check_input_settings, 1),
                                          (dst, "output", sd.check_output_settings, out_channels)):
        try:
            check(device=device.index, channels=channels, samplerate=chosen, dtype="float32")
        except Exception as err:  # sd.PortAudioError / ValueError: say what to try instead
            raise DeviceError(f"The {kind} {device.label()} refuses {chosen} Hz ({err}); its default rate is "
                              f"{device.default_rate:g} Hz: try --rate {device.default_rate:g}.") from err
    return DevicePlan(src, dst, chosen, out_channels, latency, headroom_seconds)


@dataclass
class DeviceStatus:
    """What the status line shows, once a second."""

    elapsed: float  # s since the stream started
    latency_seconds: float  # estimate: audio held in the engine (the block and more) + wait (queue + conversion) +
    # output backlog, measured per block (median of the last 2 s), + the engine's algorithmic delay + the device
    # latencies PortAudio reports
    infer_seconds: float  # median conversion time per block, recent, s
    rtf: float  # infer_seconds / block_seconds
    underruns: int
    dropped: int
    level_db: float  # input level of the latest block, dBFS
    converted: int  # blocks converted
    device_latency: tuple[float, float]  # (input, output) s, as PortAudio reports for the open stream
    device_xruns: int = 0  # callbacks PortAudio flagged (input overflow / output underflow in the driver)

    def line(self) -> str:
        slow = "  TOO SLOW" if self.rtf >= 1.0 else ""
        xruns = f" (device {self.device_xruns})" if self.device_xruns else ""
        return (f"[{self.elapsed:6.1f} s] latency ~{self.latency_seconds * 1000:4.0f} ms | infer "
                f"{self.infer_seconds * 1000:5.1f} ms/block (RTF {self.rtf:.2f}) | underruns {self.underruns}"
                f"{xruns} | drops {self.dropped} | in {self.level_db:6.1f} dB{slow}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "status", "t": round(self.elapsed, 3), "latency_ms": round(self.latency_seconds * 1000, 1),
                "infer_ms": round(self.infer_seconds * 1000, 2), "rtf": round(self.rtf, 4),
                "underruns": self.underruns, "dropped": self.dropped, "level_db": round(self.level_db, 1),
                "converted": self.converted, "device_xruns": self.device_xruns,
                "device_latency_ms": [round(x * 1000, 1) for x in self.device_latency]}


def estimate_status(pump: BlockPump, elapsed: float, block_seconds: float, algorithmic_delay: float,
                    device_latency: tuple[float, ...], device_xruns: int = 0) -> DeviceStatus:
    infer = pump.recent_infer_seconds()
    measured = pump.recent_delay_seconds() or 2 * block_seconds + infer  # before any block: a guess
    latency = measured + algorithmic_delay + sum(device_latency)
    return DeviceStatus(elapsed=elapsed, latency_seconds=latency, infer_seconds=infer,
                        rtf=infer / block_seconds if block_seconds > 0 else 0.0,
                        underruns=pump.counters.underruns, dropped=pump.counters.dropped,
                        level_db=pump.recent_level_db(), converted=pump.counters.converted,
                        device_latency=(device_latency[0], device_latency[1]), device_xruns=device_xruns)


def run_stream(session: Any, plan: DevicePlan, seconds: Optional[float] = None,
               on_status: Optional[Callable[[DeviceStatus], None]] = None,
               on_block: Optional[Callable[[Any], None]] = None) -> DeviceStatus:
    """Stream plan.input -> session -> plan.output until `seconds` pass (None: until Ctrl-C). Returns the final
    status (Ctrl-C ends the stream and returns it too). session: a LiveSession whose io_rate is plan.rate."""
    sd = sounddevice_module()
    pump = BlockPump(session.process, session.block_samples, plan.rate,
                     headroom_samples=int(plan.headroom_seconds * plan.rate), on_block=on_block)
    block_seconds = session.block_samples / plan.rate
    delay = float(session.algorithmic_delay_seconds)

    xruns = [0]  # PortAudio-flagged callbacks

    def callback(indata, outdata, frames, _time, status) -> None:  # PortAudio's thread: copy only
        if status.input_overflow or status.output_underflow:
            xruns[0] += 1
        pump.push_input(indata[:, 0])
        outdata[:] = pump.pull_output(frames)[:, None]

    latency: Any = plan.latency if plan.latency in LATENCIES else float(plan.latency)
    try:
        stream = sd.Stream(device=(plan.input.index, plan.output.index), samplerate=plan.rate,
                           channels=(1, plan.output_channels), dtype="float32", latency=latency,
                           callback=callback)
    except Exception as err:
        raise DeviceError(f"PortAudio could not open {plan.input.label()} -> {plan.output.label()} at "
                          f"{plan.rate} Hz: {err}") from err
    start = time.perf_counter()
    device_latency: tuple[float, ...] = (0.0, 0.0)
    pump.start()
    try:
        with stream:
            device_latency = tuple(float(x) for x in stream.latency)
            next_status = start + STATUS_PERIOD_SECONDS
            try:
                while seconds is None or time.perf_counter() - start < seconds:
                    time.sleep(POLL_SECONDS)
                    if pump.error is not None:
                        raise SvcError(f"The conversion stopped: {pump.error}") from pump.error
                    now = time.perf_counter()
                    if now >= next_status:
                        next_status += STATUS_PERIOD_SECONDS
                        if on_status is not None:
                            on_status(estimate_status(pump, now - start, block_seconds, delay, device_latency,
                                                      xruns[0]))
            except KeyboardInterrupt:
                pass  # Ctrl-C: the normal way to stop without --seconds
    finally:
        pump.stop()  # the stream is closed: no more input; the block in conversion (if any) finishes first
    return estimate_status(pump, time.perf_counter() - start, block_seconds, delay, device_latency, xruns[0])
