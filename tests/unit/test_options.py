"""ConvertOptions: our names, upstream's aliases, and readable refusals."""
import pytest

from svc_core.errors import OptionError
from svc_core.options import ConvertOptions


def test_upstream_aliases_map_to_fields():
    opts = ConvertOptions.from_kwargs(noice_scale=0.2, lg_num=1.0, lgr_num=0.5, cluster_infer_ratio=0.3,
                                      cr_threshold=0.1, loudness_envelope_adjustment=0.0, clip_seconds=10)
    assert (opts.noise_scale, opts.crossfade_seconds, opts.crossfade_ratio) == (0.2, 1.0, 0.5)
    assert (opts.cluster_ratio, opts.f0_threshold, opts.loudness_mix) == (0.3, 0.1, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"cluster_ratio": 1.5}, "cluster_ratio"),
    ({"noise_scale": -1}, "noise_scale"),
    ({"crossfade_ratio": 0}, "crossfade_ratio"),
    ({"clip_seconds": 2, "crossfade_seconds": 3}, "shorter"),
    ({"slice_db": 10}, "slice_db"),
    ({"bogus": 1}, "Unknown option 'bogus'"),
])
def test_bad_values_are_refused(kwargs, match):
    with pytest.raises(OptionError, match=match):
        ConvertOptions.from_kwargs(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"clip_seconds": 0.01}, "clip_seconds is 0.01 s; it must be 0 (off) or 2 to 60 s."),
    ({"transpose": 60}, "transpose is 60 semitones; it must be -48 to 48 semitones."),
    ({"pad_seconds": 5}, "pad_seconds is 5 s; it must be 0 to 2 s."),
    ({"noise_scale": float("nan")}, "noise_scale is nan; it must be 0 to 2."),
    ({"lg_num": 20}, "crossfade_seconds is 20 s; it must be 0 to 15 s."),
    ({"max_pieces": 0}, "max_pieces is 0; it must be 1 to 100000."),
    ({"slice_db": "loud"}, "slice_db must be a number; got 'loud'."),
])
def test_out_of_range_values_name_the_option_and_its_range(kwargs, message):
    with pytest.raises(OptionError) as err:
        ConvertOptions.from_kwargs(**kwargs)
    assert str(err.value) == message


def test_every_default_is_inside_its_range():
    from svc_core.options import RANGES

    defaults = ConvertOptions()
    for name, allowed in RANGES.items():
        value = getattr(defaults, name)
        assert value is None or allowed.contains(value), name
    assert ConvertOptions.from_kwargs(clip_seconds=0).clip_seconds == 0  # 0 = off stays allowed


def test_the_web_request_is_checked_by_the_same_table():
    from svc_core.ui.job_io import ConvertRequest

    request = ConvertRequest("clip.wav", "voice", "alto", clip_seconds=0.01)
    with pytest.raises(OptionError, match=r"^clip_seconds is 0.01 s; it must be 0 \(off\) or 2 to 60 s.$"):
        request.options()
    defaults = ConvertRequest("clip.wav", "voice", "alto").options()
    assert defaults == ConvertOptions(f0_predictor=defaults.f0_predictor)
