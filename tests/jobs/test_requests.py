"""check_params: the one check of a job's options (unknown fields by name, types, the engine's ranges, the voice
and its speaker), and the normalized params turned back into the engine's requests."""
from __future__ import annotations

import json

import pytest

from svc_core.errors import OptionError, SpeakerError
from svc_core.jobs import errors
from svc_core.jobs.errors import UnknownField, VoiceNotFound
from svc_core.jobs.requests import (CONVERT_FIELDS, COVER_FIELDS, check_params, convert_request, cover_request)
from svc_core.options import ConvertOptions


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.settings import STARTER_VOICES

    root = tmp_path_factory.mktemp("library")
    return ModelLibrary(root / "models", root / "uploads", shipped=(STARTER_VOICES,))


def test_conversion_params_are_normalized_with_every_field(library):
    params = check_params("convert", {"model": "starter", "speaker": "flite_slt", "transpose": 3, "k_step": 50.0},
                          library)
    assert tuple(params) == CONVERT_FIELDS and json.loads(json.dumps(params)) == params
    assert params["transpose"] == 3.0 and isinstance(params["transpose"], float)
    assert params["k_step"] == 50 and isinstance(params["k_step"], int)
    assert params["noise_scale"] == ConvertOptions.noise_scale and params["backend"] == "torch"
    assert params["cluster_ratio"] is None and params["loudness_mix"] is None  # the voice's own defaults
    request = convert_request(params, "/tmp/clip.wav")
    assert request.audio_path == "/tmp/clip.wav" and request.speaker == "flite_slt" and request.transpose == 3.0
    assert "cluster_ratio" not in request.engine_options()  # left to the voice
    assert check_params("convert", {"model": "starter", "speaker": ""}, library)["speaker"] == "fest_ked"


@pytest.mark.parametrize("params, error, words", [
    ({"model": "starter", "pitch": 2, "volume": 1}, UnknownField, ["pitch", "volume"]),
    ({"speaker": "x"}, OptionError, ["model"]),
    ({"model": "starter", "transpose": 60}, OptionError, ["transpose", "-48"]),
    ({"model": "starter", "transpose": "up"}, OptionError, ["transpose", "number"]),
    ({"model": "starter", "transpose": float("nan")}, OptionError, ["transpose"]),
    ({"model": "starter", "k_step": 2.5}, OptionError, ["k_step", "whole"]),
    ({"model": "starter", "auto_f0": 1}, OptionError, ["auto_f0"]),
    ({"model": "starter", "cluster_ratio": 1.5}, OptionError, ["cluster_ratio"]),
    ({"model": "starter", "backend": "gpu-magic"}, OptionError, ["gpu-magic"]),
    ({"model": "starter", "f0_predictor": "guess"}, OptionError, ["guess"]),
    ({"model": "nobody"}, VoiceNotFound, ["nobody"]),
    ({"model": "starter", "speaker": "nobody"}, SpeakerError, ["nobody", "flite_slt"]),
])
def test_bad_conversion_params_are_refused_with_the_field_named(library, params, error, words):
    with pytest.raises(error) as caught:
        check_params("convert", params, library)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    expected = {UnknownField: errors.UNKNOWN_FIELD, VoiceNotFound: errors.VOICE_NOT_FOUND,
                SpeakerError: errors.SPEAKER_NOT_FOUND, OptionError: errors.INVALID_OPTION}[error]
    assert errors.error_code(caught.value) == expected


def test_cover_params_take_the_voice_options_flat_or_nested(library):
    flat = check_params("cover", {"model": "starter", "f0_predictor": "pm", "formats": "mp3", "key": "MANUAL",
                                  "transpose": -5}, library)
    nested = check_params("cover", {"model": "starter", "voice": {"f0_predictor": "pm"}, "formats": ["mp3"],
                                    "key": "manual", "transpose": -5}, library)
    assert flat == nested
    assert set(COVER_FIELDS) <= set(flat) and flat["key"] == "manual" and flat["formats"] == ["mp3"]
    assert flat["separator"] == "default" and flat["speaker"] == "fest_ked"
    request = cover_request(flat, "/tmp/song.wav")
    assert request.song_path == "/tmp/song.wav" and request.transpose_value == -5.0
    assert request.voice.f0_predictor == "pm" and request.voice.transpose == 0.0  # the cover's key decides
    assert request.formats == ("mp3",) and request.separator != "default"  # the registry's default separator
    assert request.checked() == request


def test_bad_cover_params_are_refused(library):
    for params, error in (({"model": "starter", "voice": {"f0_predictor": "pm"}, "f0_predictor": "pm"},
                           OptionError),  # given twice
                          ({"model": "starter", "voice": "pm"}, OptionError),
                          ({"model": "starter", "target_lufs": 20}, OptionError),
                          ({"model": "starter", "make_zip": "yes"}, OptionError),
                          ({"model": "starter", "stems": ["mix"]}, UnknownField)):
        with pytest.raises(error):
            check_params("cover", params, library)
    with pytest.raises(OptionError, match="kind"):
        check_params("separate", {"model": "starter"}, library)
