"""The page's pure helpers: which controls a voice gets, human labels, example chips, the F0 plot data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from svc_core.ui import plots, views
from svc_core.ui.views import ControlSet, VoiceTraits, control_set

TORCH_FAST = ["fp32", "bf16"]  # a CPU with fast bf16
AUDIO = (".wav", ".flac")


# ------------------------------------------------------------------ per-voice controls
def test_world_voice_shows_no_noise_auto_f0_engine_or_vocoder_precision():
    c = control_set(VoiceTraits(family="world"), "onnx", TORCH_FAST)
    assert (c.noise, c.auto_f0, c.engine_picker, c.vocoder_precisions, c.cluster) == (False, False, False, (), False)
    assert c.engine == "torch"  # WORLD voices do not export to ONNX
    assert c.encoder_precision and "WORLD" in c.note


def test_world_voice_with_an_index_keeps_the_cluster_ratio():
    assert control_set(VoiceTraits(family="world", has_cluster=True), "torch", TORCH_FAST).cluster


def test_sovits_voice_on_torch_shows_everything_it_uses():
    from svc_core.families import SOVITS_CONTROLS

    c = control_set(VoiceTraits(has_cluster=True), "torch", TORCH_FAST)
    diffusion = {"shallow_diffusion", "only_diffusion", "k_step", "diffusion_method", "diffusion_speedup",
                 "second_encoding", "enhance", "enhancer_adaptive_key"}  # no diffusion model, no vocoder
    assert c == ControlSet(noise=True, cluster=True, auto_f0=True, engine_picker=True, engine="torch",
                           vocoder_precisions=("fp32", "bf16"), encoder_precision=True, note="",
                           shown=frozenset(SOVITS_CONTROLS) - diffusion, defaults={})


def test_sovits_voice_on_onnx_offers_int8_and_no_auto_f0_or_torch_encoder_precision():
    c = control_set(VoiceTraits(), "onnx", TORCH_FAST)
    assert c.vocoder_precisions == ("fp32", "int8") and not c.auto_f0 and not c.encoder_precision
    assert not c.cluster  # no kmeans / index file: the ratio would do nothing


def test_onnx_only_voice_runs_on_onnx_whatever_is_picked():
    c = control_set(VoiceTraits(family="so-vits-onnx"), "torch", TORCH_FAST)
    assert (c.engine, c.engine_picker, c.auto_f0) == ("onnx", False, False)
    assert "bf16" not in c.vocoder_precisions and "ONNX" in c.note


def test_voice_without_f0_predictor_hides_auto_f0_and_fp32_only_cpu_hides_precision():
    c = control_set(VoiceTraits(auto_f0=False), "torch", ["fp32"])
    assert not c.auto_f0 and c.vocoder_precisions == () and not c.encoder_precision


# ------------------------------------------------------------------ labels
def test_speaker_names_are_readable_and_values_stay_the_config_names():
    labels = {"flite_awb": "flite awb (Scottish English, male)"}
    assert views.speaker_choices(["flite_awb", "fest_ked", "3"], labels) == [
        ("flite awb (Scottish English, male)", "flite_awb"), ("fest ked", "fest_ked"), ("Speaker 3", "3")]


def test_precision_labels_speak_of_quality_and_speed():
    choices = dict((v, k) for k, v in views.precision_choices(["fp32", "bf16", "int8"]))
    assert choices["fp32"].startswith("Best quality") and "Faster" in choices["bf16"] and "int8" in choices["int8"]


def test_progress_states_for_queued_and_stopped():
    assert 'data-state="stopped"' in views.stopped_progress() and "Stopped" in views.stopped_progress()
    assert 'data-state="queued"' in views.queued_progress() and "ETA" not in views.queued_progress()
    assert "ETA 3.0 s" in views.progress_html(0.5, "converting", 3.0, 3.0)


# ------------------------------------------------------------------ example chips
def test_examples_are_titled_from_the_index_with_transpose_and_speaker(tmp_path):
    for name in ("b.wav", "a.flac", "c.wav", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "examples.json").write_text(json.dumps([
        {"file": "b.wav", "title": "Sung, male", "suggested_transpose": 12, "speaker": "tenor"},
        {"file": "missing.wav", "title": "gone"},
        {"file": "a.flac", "title": "Spoken", "suggested_transpose": "oops"}]))
    examples = views.load_examples(tmp_path, AUDIO, limit=12)
    assert [(e.path.name, e.title, e.transpose, e.speaker) for e in examples] == [
        ("b.wav", "Sung, male", 12.0, "tenor"), ("a.flac", "Spoken", 0.0, None), ("c.wav", "c.wav", 0.0, None)]
    assert views.example_label(examples[0]) == "Sung, male · +12 st"
    assert views.example_label(examples[1]) == "Spoken"
    assert len(views.load_examples(tmp_path, AUDIO, limit=2)) == 2


def test_broken_examples_index_falls_back_to_file_names(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"x")
    (tmp_path / "examples.json").write_text("{not json")
    assert [e.title for e in views.load_examples(tmp_path, AUDIO, 12)] == ["x.wav"]
    assert views.load_examples(tmp_path / "nowhere", AUDIO, 12) == []


def test_the_repo_examples_have_titles_and_suggested_transposes():
    from svc_core.ui.server import find_examples
    from svc_core.ui.settings import AppSettings

    examples = find_examples(AppSettings().examples_dir)
    assert len(examples) == 5 and all(not e.title.endswith(".flac") for e in examples)
    assert {e.transpose for e in examples} == {0.0, 12.0}


# ------------------------------------------------------------------ F0 plot data
def _tone(hz: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(4 * np.pi * hz * t)).astype(np.float32)


def test_f0_plot_tracks_both_sides_with_the_transpose_applied_to_the_source():
    source = _tone(220.0, 2.0, 16000)
    output = np.concatenate([_tone(440.0, 1.0, 44100), np.zeros(44100, np.float32)])  # voiced, then silence
    frame = plots.f0_comparison(source, 16000, output, 44100, transpose=12)
    assert list(frame.columns) == list(plots.COLUMNS)
    src = frame[frame["series"] == plots.SOURCE]
    out = frame[frame["series"] == plots.OUTPUT]
    assert np.median(src["f0 (Hz)"]) == pytest.approx(440.0, rel=0.01)
    assert np.median(out["f0 (Hz)"]) == pytest.approx(440.0, rel=0.01)
    assert out["time (s)"].max() < 1.1  # the silent second has no points
    assert set(src["note"]) == {"A4"}


def test_f0_plot_frame_count_is_bounded_for_long_clips():
    assert plots.frame_step(10.0) == plots.MIN_STEP_SECONDS
    assert plots.frame_step(600.0) == pytest.approx(600.0 / plots.MAX_POINTS)
    times, f0 = plots.track_f0(_tone(200.0, 0.01, 8000), 8000, 0.01)  # too short to track: empty, no error
    assert len(times) == len(f0) == 0


def test_note_names():
    assert [plots.note_name(hz) for hz in (440.0, 261.63, 110.0, float("nan"), 0.0)] == ["A4", "C4", "A2", "", ""]


# ------------------------------------------------------------------ reading a voice (config and manifest only)
def test_starter_voices_traits_and_speaker_names():
    from svc_core.ui.settings_section import speaker_labels, voice_traits
    from svc_core.ui.models import describe_folder
    from svc_core.ui.settings import STARTER_SOVITS, STARTER_VOICES

    world = describe_folder(STARTER_VOICES, "starter")
    assert voice_traits(world) == VoiceTraits(family="world", has_cluster=False, auto_f0=True)
    assert not control_set(voice_traits(world), "torch", TORCH_FAST).noise
    sovits = describe_folder(STARTER_SOVITS, "starter-sovits")
    assert not voice_traits(sovits).world and control_set(voice_traits(sovits), "torch", TORCH_FAST).noise
    labels = speaker_labels(world)
    assert labels["flite_awb"] == "flite awb (Scottish English, male)" and set(labels) == set(world.speakers)


def test_a_voice_without_manifest_has_no_speaker_labels(web_voice):
    from svc_core.ui.settings_section import speaker_labels
    from svc_core.ui.models import describe_folder

    entry = describe_folder(web_voice.models_dir / "demo-voice", "demo-voice")
    assert speaker_labels(entry) == {}
    assert views.speaker_choices(entry.speakers, {})[0] == ("alto", "alto")


def test_voice_labels_say_what_kind_of_voice_in_plain_words():
    from svc_core.ui.models import describe_folder, voice_label
    from svc_core.ui.settings import STARTER_VOICES

    assert voice_label("demo", 3, "so-vits-svc", False, "vec256l9") == "demo (3 speakers; so-vits-svc; vec256l9)"
    assert voice_label("solo", 1, "so-vits-svc, ONNX file", True, "vec768l12") == (
        "solo (1 speaker; so-vits-svc, ONNX file, with timbre index; vec768l12)")
    if (STARTER_VOICES / "config.json").is_file():
        starter = describe_folder(STARTER_VOICES, "starter")
        assert starter.label.startswith("starter (4 speakers; WORLD voice; "), starter.label
