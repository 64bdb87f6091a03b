"""RVC voices on the page, the parts that need no model file: which knobs an RVC voice gets (from the family table's
`controls`, never a second list), the defaults they take, the job options built per family, and which files of a
voice folder are the RVC model and its index."""
from __future__ import annotations

from pathlib import Path

import pytest

from svc_core import families
from svc_core.errors import ModelError, OptionError
from svc_core.options import ConvertOptions
from svc_core.ui.job_io import ConvertRequest
from svc_core.ui.views import VoiceTraits, control_set

TORCH_FAST = ["fp32", "bf16"]
SOVITS_ONLY = ("noise_scale", "auto_predict_f0", "slice_db", "pad_seconds", "clip_seconds", "crossfade_seconds",
               "shallow_diffusion", "enhance")
RVC_ONLY = ("protect", "filter_radius", "resample_sr")


def rvc_traits(**kw) -> VoiceTraits:
    return VoiceTraits(**{"family": "rvc", "has_cluster": True, "auto_f0": False, "model_words": "RVC v2 40k", **kw})


# ------------------------------------------------------------------ which knobs
def test_rvc_voice_gets_the_family_controls_and_none_of_so_vits():
    c = control_set(rvc_traits(), "torch", TORCH_FAST)
    assert c.shown == frozenset(families.RVC_CONTROLS)  # exactly the table's list for a pitch model with an index
    assert all(c.shows(name) for name in RVC_ONLY + ("transpose", "f0_predictor", "cluster_ratio", "loudness_mix"))
    assert not any(c.shows(name) for name in SOVITS_ONLY)
    assert (c.noise, c.auto_f0, c.diffusion, c.enhancer) == (False, False, None, False)
    assert c.vocoder_precisions == tuple(TORCH_FAST)  # the decoder in bf16 applies to RVC voices too
    assert c.encoder_precision and c.cluster
    assert c.default("cluster_ratio") == 0.75 and c.default("loudness_mix") == 0.25  # RVC WebUI's defaults
    assert c.default("protect") == 0.33 and c.default("filter_radius") == 3 and c.default("resample_sr") == 0
    assert "RVC v2 40k" in c.note


def test_rvc_voice_runs_in_torch_unless_rvc_onnx_is_there():
    torch_only = control_set(rvc_traits(), "onnx", TORCH_FAST, rvc_onnx=False)
    assert (torch_only.engine, torch_only.engine_picker) == ("torch", False) and "torch" in torch_only.note
    both = control_set(rvc_traits(), "onnx", TORCH_FAST, rvc_onnx=True)
    assert (both.engine, both.engine_picker) == ("onnx", True) and not both.encoder_precision


def test_rvc_model_without_pitch_hides_every_pitch_knob():
    c = control_set(rvc_traits(has_f0=False), "torch", TORCH_FAST)
    assert c.shown == frozenset(families.RVC_CONTROLS) - frozenset(families.RVC_PITCH_CONTROLS)
    assert not any(c.shows(name) for name in ("transpose", "f0_predictor", "protect", "filter_radius"))
    assert c.shows("resample_sr") and c.shows("cluster_ratio") and "no pitch input" in c.note


def test_rvc_voice_without_index_has_no_index_rate():
    c = control_set(rvc_traits(has_cluster=False), "torch", TORCH_FAST)
    assert not c.cluster and c.default("cluster_ratio") == 0.0 and c.default("loudness_mix") == 0.25


def test_so_vits_voice_shows_no_rvc_knob_and_keeps_its_defaults():
    c = control_set(VoiceTraits(has_cluster=True), "torch", TORCH_FAST)
    assert not any(c.shows(name) for name in RVC_ONLY)
    assert c.shows("slice_db") and c.shows("noise_scale")
    assert c.default("cluster_ratio") == 0.0 and c.default("loudness_mix") == 1.0


# ------------------------------------------------------------------ job options per family
def test_page_request_for_an_rvc_voice_sends_only_what_rvc_uses():
    """The page's hidden so-vits knobs sit at their defaults: they are left out; RVC's are sent."""
    page = ConvertRequest("clip.wav", "lead", "0", transpose=2, cluster_ratio=0.6, loudness_mix=0.3, protect=0.2,
                          filter_radius=5, resample_sr=48000)
    rvc = families.family("rvc")
    options = page.voice_options("harvest", rvc)
    assert options == {"transpose": 2.0, "f0_predictor": "harvest", "cluster_ratio": 0.6, "loudness_mix": 0.3,
                       "encoder_precision": "fp32", "vocoder_precision": "fp32", "protect": 0.2, "filter_radius": 5,
                       "resample_sr": 48000}
    opts = ConvertOptions.from_kwargs(families.option_defaults(rvc, True), **options)
    families.check_options(rvc, opts)  # the engine's own check accepts them


def test_an_rvc_voice_takes_its_own_defaults_for_what_the_request_leaves():
    rvc = families.family("rvc")
    request = ConvertRequest("clip.wav", "lead", "0")  # cluster_ratio / loudness_mix left to the voice
    opts = request.options("rmvpe", families.option_defaults(rvc, has_index=True))
    assert (opts.cluster_ratio, opts.loudness_mix, opts.protect, opts.filter_radius) == (0.75, 0.25, 0.33, 3)
    sovits = request.options("rmvpe", families.option_defaults(families.family("so-vits"), has_index=True))
    assert (sovits.cluster_ratio, sovits.loudness_mix) == (0.0, 1.0)


def test_a_so_vits_knob_sent_for_an_rvc_voice_reaches_the_engine_check():
    """An API client's changed so-vits option is passed on (not silently dropped), and the family table names it."""
    rvc = families.family("rvc")
    options = ConvertRequest("clip.wav", "lead", "0", noise_scale=0.6).voice_options("rmvpe", rvc)
    assert options["noise_scale"] == 0.6
    with pytest.raises(OptionError, match="noise_scale does not apply to RVC"):
        families.check_options(rvc, ConvertOptions.from_kwargs(families.option_defaults(rvc, False), **options))


def test_an_rvc_model_without_pitch_gets_no_pitch_options():
    rvc = families.family("rvc")
    request = ConvertRequest("clip.wav", "lead", "0", f0_predictor="auto")
    options = request.voice_options("fcpe", rvc, has_f0=False)  # "auto" resolved to fcpe: still not sent
    assert not {"transpose", "f0_predictor", "protect", "filter_radius"} & set(options)
    asked = ConvertRequest("clip.wav", "lead", "0", transpose=3).voice_options("rmvpe", rvc, has_f0=False)
    with pytest.raises(OptionError, match="transpose"):
        families.check_options(rvc, ConvertOptions.from_kwargs(**asked), has_f0=False)


def test_so_vits_requests_leave_rvc_options_out_unless_changed():
    sovits = families.family("so-vits")
    assert not set(RVC_ONLY) & set(ConvertRequest("clip.wav", "v", "alto").voice_options("rmvpe", sovits))
    sent = ConvertRequest("clip.wav", "v", "alto", protect=0.2).voice_options("rmvpe", sovits)
    with pytest.raises(OptionError, match="protect does not apply"):
        families.check_options(sovits, ConvertOptions.from_kwargs(**sent))


def test_api_rvc_values_are_checked():
    from svc_core.ui.rvc_section import rvc_values

    assert rvc_values(None, None, None) == {"protect": 0.33, "filter_radius": 3, "resample_sr": 0}
    assert rvc_values(0.5, 7.0, 44100.0) == {"protect": 0.5, "filter_radius": 7, "resample_sr": 44100}
    with pytest.raises(OptionError, match="filter_radius is 2.5; it must be a whole number"):
        rvc_values(0.33, 2.5, 0)
    with pytest.raises(OptionError, match="protect is 0.7"):
        ConvertRequest("clip.wav", "lead", "0", protect=0.7).options()


# ------------------------------------------------------------------ which files
def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_the_rvc_model_and_its_added_index_are_picked_by_rvc_rules(tmp_path):
    from svc_core.ui.models import _pick_generator
    from svc_core.ui.rvc_files import pick_rvc_index

    folder = tmp_path / "lead"
    _touch(folder, "lead.pth", "D_100.pth", "kmeans_10.pth", "trained_IVF26_Flat_nprobe_1_lead_v2.index",
           "added_IVF26_Flat_nprobe_1_lead_v2.index", "added_IVF9_Flat_nprobe_1_other_v2.index")
    model = _pick_generator(folder)
    assert model.name == "lead.pth"  # not the discriminator, not a kmeans file
    assert pick_rvc_index(folder, model).name == "added_IVF26_Flat_nprobe_1_lead_v2.index"  # the one naming it
    (folder / "added_IVF26_Flat_nprobe_1_lead_v2.index").unlink()
    assert pick_rvc_index(folder, model).name == "added_IVF9_Flat_nprobe_1_other_v2.index"  # the only one left
    only_trained = tmp_path / "solo"
    _touch(only_trained, "solo.pth", "trained_IVF26_Flat_nprobe_1_solo_v2.index")
    assert pick_rvc_index(only_trained, only_trained / "solo.pth") is None  # RVC's vector-less index: never used
    _touch(only_trained, "added_IVF1_Flat_nprobe_1_a_v2.index", "added_IVF2_Flat_nprobe_1_b_v2.index")
    with pytest.raises(ModelError, match="several index files could belong to 'solo'"):
        pick_rvc_index(only_trained, only_trained / "solo.pth")


def test_several_rvc_files_need_the_folder_name(tmp_path):
    from svc_core.ui.models import _pick_generator

    folder = tmp_path / "lead"
    _touch(folder, "lead_e100_s2000.pth", "lead.pth")
    assert _pick_generator(folder).name == "lead.pth"
    (folder / "lead.pth").unlink()
    _touch(folder, "other.pth")
    with pytest.raises(ModelError, match=r"several \.pth files in lead/ .*name it lead\.pth"):
        _pick_generator(folder)


def test_rvc_voices_offer_only_the_pitch_trackers_rvc_runs(web_voice):
    from svc_core.rvc.f0 import RVC_F0_STEPS
    from svc_core.ui.settings_section import f0_choices

    every = [value for _, value in f0_choices()[0]]
    rvc = [value for _, value in f0_choices("rvc")[0]]
    assert rvc[0] == "auto" and set(rvc[1:]) <= set(RVC_F0_STEPS) and "pm" in rvc
    assert "dio" in every and "dio" not in rvc  # so-vits' dio is not one of RVC's methods
