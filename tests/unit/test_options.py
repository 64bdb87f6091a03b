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
