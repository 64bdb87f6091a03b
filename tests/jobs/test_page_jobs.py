"""The page's "Run in background" (svc_core/ui/jobs_tab.py) through a real JobService on the starter voice: the
Convert and Cover tabs' requests become job params the service accepts unchanged, the jobs run, and the Jobs tab's
view shows them with their result files (only to their owner)."""
from __future__ import annotations

from types import SimpleNamespace

import soundfile as sf

from jobs.conftest import VOICE
from svc_core.jobs.model import DONE

TIMEOUT = 300.0  # a hang guard, not a timing


def test_cover_params_are_what_the_job_service_accepts_and_give_back_the_request():
    from svc_core.jobs.requests import check_params, cover_request
    from svc_core.ui.cover_job import CoverJobRequest
    from svc_core.ui.job_io import ConvertRequest
    from svc_core.ui.jobs_tab import cover_params

    voice = ConvertRequest(None, VOICE, "", f0_predictor="pm", noise_scale=0.3)
    req = CoverJobRequest("song.wav", voice, "hpss", key="manual", transpose=3, reverb=0.2, formats=("wav", "flac"),
                          make_zip=False)
    params = check_params("cover", cover_params(req))
    back = cover_request(params, "song.wav")
    assert (back.key, back.transpose, back.reverb, back.formats, back.make_zip) == ("manual", 3, 0.2,
                                                                                   ("wav", "flac"), False)
    assert (back.voice.model, back.voice.f0_predictor, back.voice.noise_scale) == (VOICE, "pm", 0.3)


def test_background_conversion_and_cover_run_and_show_in_the_jobs_view(jobs, clip, tmp_path):
    from svc_core.ui.cover_job import CoverJobRequest
    from svc_core.ui.job_io import ConvertRequest
    from svc_core.ui.jobs_tab import JobsTabContext, JobsView, submit_background
    from web.cover_songs import SEPARATOR, write_song

    data, rate = sf.read(str(clip))
    clip = tmp_path / "page_clip.wav"  # its own audio: the session's service caches features per clip content,
    sf.write(clip, 0.9 * data, rate)  # and other tests expect their clip's f0 to be computed, not cached
    ctx = JobsTabContext(jobs.service, tmp_path / "downloads")
    login = SimpleNamespace(username="ann")  # what gr.Request carries with --auth
    said = submit_background(ctx, ConvertRequest(str(clip), VOICE, "", f0_predictor="pm", transpose=2), login)
    song = write_song(tmp_path / "song.wav", seconds=2.0, seed=3)
    cover = CoverJobRequest(str(song), ConvertRequest(None, VOICE, "", f0_predictor="pm"), SEPARATOR,
                            formats=("wav",), make_zip=False)
    said_cover = submit_background(ctx, cover, login)
    assert "queued" in said and "queued" in said_cover

    view = JobsView(ctx)
    records = view.records("page:ann")
    assert sorted(r.kind for r in records) == ["convert", "cover"] and view.records("page:bob") == []
    for record in records:
        assert jobs.service.wait(record.id, TIMEOUT).status == DONE
    converted = next(r for r in view.records("page:ann") if r.kind == "convert")
    assert converted.params["transpose"] == 2
    bar, text, audio, files = view.show(converted.id[:8], "page:ann")
    assert "done" in text and audio is not None
    assert abs(sf.info(audio).duration - sf.info(str(clip)).duration) < 0.1
    covered = next(r for r in view.records("page:ann") if r.kind == "cover")
    _, _, played, cover_files = view.show(covered.id[:8], "page:ann")
    assert any(name.endswith("_mix.wav") for name in cover_files) and played.endswith("_mix.wav")
    assert view.show(covered.id[:8], "page:bob")[2] is None  # another login does not see it
    assert "already ended" in view.cancel(covered.id[:8], "page:ann")
