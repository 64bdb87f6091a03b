"""bench/README.md's shallow-diffusion table: rows made with `python -m bench --k-steps 100,20` (the full-size
so-vits model + the full-size diffusion model and mel vocoder), each against upstream's way (`torch-upstream`: the
denoiser's plain forward at every step, each slice decoded whole) with the same f0, threads, input and k_step."""
from __future__ import annotations

STAGES = ("load", "encoder", "synthesizer", "vocoder", "diffusion", "mel vocoder")
TARGET = ("diffusion", "mel vocoder")  # issue #21: these two stages at least 3x faster than upstream's way


def _ratio(value: float, base: float) -> str:
    return f" ({value / base:.2f}x)" if base else ""


def diffusion_table(rows: list[dict]) -> list[str]:
    """Markdown lines: per row the stage seconds, diffusion + mel vocoder (ratio to upstream's way and the speedup),
    end to end, RTF, peak RSS and the CPU busy before it."""
    def key(r: dict) -> tuple:
        return (r["f0"], r["threads"], r["audio_seconds"], r.get("k_step"), r.get("io"))

    base = {key(r): r for r in rows if r["backend"] == "torch-upstream"}
    lines = ["Ratios to upstream's way (`torch-upstream`: denoiser plain forward per step, each slice decoded whole) "
             "of the same run, threads, input and k_step; \"speedup\" is upstream's way's diffusion + mel vocoder "
             "seconds over the row's (issue #21's target: >= 3x), in wall seconds and in CPU-seconds (this process, "
             "all threads: what moves least when other processes share the cores).", "",
             "| backend | f0 | threads | audio s | k_step | " + " | ".join(STAGES)
             + " | diffusion + mel vocoder s | speedup | diffusion + mel vocoder CPU-s | speedup (CPU) | end-to-end s "
             "| CPU-s (whole conversion) | RTF | peak RSS MB | CPU busy before % |",
             "|" + "---|" * (len(STAGES) + 14)]
    for r in rows:
        b = base.get(key(r))
        stages = {"load": r["load"], **r["stages"]}
        bstages = {"load": b["load"], **b["stages"]} if b else {}
        cells = [f"{stages.get(s, 0.0):.2f}" + _ratio(stages.get(s, 0.0), bstages.get(s, 0.0)) for s in STAGES]
        target = sum(stages.get(s, 0.0) for s in TARGET)
        btarget = sum(bstages.get(s, 0.0) for s in TARGET)
        speedup = f"{btarget / target:.2f}x" if b and target else "-"
        cpu = sum(r.get("stage_cpu_seconds", {}).get(s, 0.0) for s in TARGET)
        bcpu = sum(b.get("stage_cpu_seconds", {}).get(s, 0.0) for s in TARGET) if b else 0.0
        speedup_cpu = f"{bcpu / cpu:.2f}x" if bcpu and cpu else "-"
        seconds = f"{r['audio_seconds']:.0f}" + (" (file)" if r.get("io") == "file" else "")
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {seconds} | {r.get('k_step')} | "
                     + " | ".join(cells) + f" | {target:.2f}{_ratio(target, btarget)} | {speedup} "
                     f"| {cpu:.1f} | {speedup_cpu} "
                     f"| {r['end_to_end']:.2f}{_ratio(r['end_to_end'], b['end_to_end'] if b else 0)} "
                     f"| {r.get('convert_cpu_seconds', 0.0):.0f} "
                     f"| {r['rtf']:.3f} | {r['peak_rss_mb']:.0f}{_ratio(r['peak_rss_mb'], b['peak_rss_mb'] if b else 0)} "
                     f"| {r.get('cpu_busy_before', float('nan')):.0f} |")
    return lines


def _dev(row: dict, key: str) -> str:
    return f"{row[key]:.2g}" if key in row else "-"


def stages_table(rows: list[dict]) -> list[str]:
    """Markdown lines for `python -m bench.diffusion_stages` output rows (the summary lines, not the progress)."""
    lines = ["| mode | threads | k_step | pieces / audio s | diffusion CPU s | mel vocoder CPU s | speedup (CPU) "
             "| diffusion wall s | mel vocoder wall s | speedup (wall) | mel max abs dev | audio max abs dev | load 1 min |",
             "|" + "---|" * 13]
    for r in rows:
        if "mode" not in r:
            continue
        lines.append(f"| {r['mode']} | {r['threads']} | {r['k_step']} | {r['pieces']} / {r['audio_s']:.1f} "
                     f"| {r['cpu']['diffusion']:.2f} | {r['cpu']['mel vocoder']:.2f} | {r.get('speedup_cpu', 0):.2f}x "
                     f"| {r['wall']['diffusion']:.2f} | {r['wall']['mel vocoder']:.2f} | {r.get('speedup_wall', 0):.2f}x "
                     f"| {_dev(r, 'mel_max_abs_dev')} | {_dev(r, 'audio_max_abs_dev')} "
                     f"| {r['load1']:.1f} |")
    return lines


def diffusion_section(saved: dict) -> list[str]:
    """The README's shallow-diffusion section from bench/last_diffusion.json: {stamp, machine, command, rows
    (bench.one rows with k_step), stages (bench.diffusion_stages summary rows), stages_command}."""
    lines = ["## Shallow diffusion (full-size diffusion model + mel vocoder, dpm-solver++ speedup 10)", "",
             f"{saved['stamp']}, {saved['machine']}. Command: `{saved['command']}`.", ""]
    if saved.get("rows"):
        lines += diffusion_table(saved["rows"])
    if saved.get("stages"):
        lines += ["", f"The two stages alone, every mode in turn in one process (`{saved.get('stages_command', '')}`): "
                  "best of the rounds; speedup = upstream's way's diffusion + mel vocoder seconds over the mode's; "
                  "deviations against upstream's way in float32 (mel: log units; audio: samples in [-1, 1]).", ""]
        lines += stages_table(saved["stages"])
    return lines
