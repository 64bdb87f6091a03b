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
    lines = ["### Shallow diffusion (full-size diffusion model + mel vocoder, dpm-solver++ speedup 10)", "",
             "Ratios to upstream's way (`torch-upstream`: denoiser plain forward per step, each slice decoded whole) "
             "of the same run, threads, input and k_step; \"speedup\" is upstream's way's diffusion + mel vocoder "
             "seconds over the row's (issue #21's target: >= 3x).", "",
             "| backend | f0 | threads | audio s | k_step | " + " | ".join(STAGES)
             + " | diffusion + mel vocoder s | speedup | end-to-end s | RTF | peak RSS MB | CPU busy before % |",
             "|" + "---|" * (len(STAGES) + 11)]
    for r in rows:
        b = base.get(key(r))
        stages = {"load": r["load"], **r["stages"]}
        bstages = {"load": b["load"], **b["stages"]} if b else {}
        cells = [f"{stages.get(s, 0.0):.2f}" + _ratio(stages.get(s, 0.0), bstages.get(s, 0.0)) for s in STAGES]
        target = sum(stages.get(s, 0.0) for s in TARGET)
        btarget = sum(bstages.get(s, 0.0) for s in TARGET)
        speedup = f"{btarget / target:.2f}x" if b and target else "-"
        seconds = f"{r['audio_seconds']:.0f}" + (" (file)" if r.get("io") == "file" else "")
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {seconds} | {r.get('k_step')} | "
                     + " | ".join(cells) + f" | {target:.2f}{_ratio(target, btarget)} | {speedup} "
                     f"| {r['end_to_end']:.2f}{_ratio(r['end_to_end'], b['end_to_end'] if b else 0)} "
                     f"| {r['rtf']:.3f} | {r['peak_rss_mb']:.0f}{_ratio(r['peak_rss_mb'], b['peak_rss_mb'] if b else 0)} "
                     f"| {r.get('cpu_busy_before', float('nan')):.0f} |")
    return lines
