"""The Cover tab's job (svc_core/ui/cover_job.py) with real components: the shipped WORLD starter voice, the HPSS
separator, svc_core.cover.run_cover, the page's voice cache, slots and limits; and how its result fills the tab
(cover_view.render)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from web.cover_songs import SEPARATOR, SPEAKER, VOICE, cover_context, cover_request, run_job, write_song

GUARD_SECONDS = 120.0  # hang guard for waits on the worker, not a timing assertion


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return cover_context(tmp_path_factory.mktemp("cover-tab"))


@pytest.fixture(scope="module")
def song_path(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("songs") / "my song.wav")


def finished(updates):
    last = updates[-1]
    assert last.finished, "the stream ended without a result or an error"
    return last


def test_a_cover_streams_every_stage_and_ends_with_the_stems(context, song_path):
    from svc_core.cover import STAGES, STEM_NAMES
    from svc_core.ui.cover_view import OUTPUT_ORDER, render, summary_of, summary_text

    updates = run_job(cover_request(song_path, formats=("wav", "flac"), make_zip=True), context)
    last = finished(updates)
    assert last.error is None, last.log
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    seen = []  # the stages in the order the bar showed them
    for u in updates:
        name = u.stage.split(":")[0]
        if name in STAGES and (not seen or seen[-1] != name):
            seen.append(name)
    assert seen == list(STAGES)
    assert any(u.eta is not None for u in updates if not u.finished)
    for stage in STAGES:
        assert f"stage {stage}" in last.log
    assert "time budget:" in last.log and "done:" in last.log

    song_frames = sf.info(str(song_path)).frames
    result = last.outcome.result
    assert set(result.stems) == set(STEM_NAMES)
    for name in STEM_NAMES:
        assert set(result.stems[name]) == {"wav", "flac"}
        for path in result.stems[name].values():
            info = sf.info(str(path))
            assert info.frames == song_frames and info.channels == 2
    with zipfile.ZipFile(result.zip_path) as z:
        assert len(z.namelist()) == 8

    values = dict(zip(OUTPUT_ORDER, render(last, clear=False)))
    for name in STEM_NAMES:  # the players get the wav (the first of wav/flac/mp3 that was written)
        assert values[name].endswith(f"_{name}.wav") and Path(values[name]).is_file()
    assert len(values["files"]) == 9 and values["files"][-1].endswith(".zip")
    assert 'data-state="done"' in values["progress"]
    summary = values["summary"]
    assert summary == summary_of(last.outcome)
    assert summary["voice"] == VOICE and summary["speaker"] == SPEAKER and summary["separator"].startswith("HPSS")
    assert summary["transpose"] == summary["suggested_transpose"]  # key "auto" uses the suggestion
    assert summary["key_explanation"] and set(summary["stage_seconds"]) == set(STAGES) and summary["threads"] >= 1
    assert abs(summary["mix_lufs"] - (-14.0)) <= 1.0
    assert summary["files"]["mix"] == {"wav": "my_song_mix.wav", "flac": "my_song_mix.flac"}  # a safe name
    assert f"(suggested: {summary['suggested_transpose']:+d})" in summary_text(summary)


def test_manual_key_moves_the_vocal_and_the_accompaniment(context, song_path):
    from svc_core.cover.key import rubberband_path

    if rubberband_path() is None:
        pytest.skip("rubberband-cli is not installed")
    last = finished(run_job(cover_request(song_path, key="manual", transpose=-3, shift_accompaniment=True,
                                          formats=("mp3",), make_zip=False), context))
    assert last.error is None, last.log
    result = last.outcome.result
    assert result.transpose == -3 and result.accompaniment_shift == -3 and result.zip_path is None
    assert "key manual (-3)" in last.log
    assert {p.suffix for by_format in result.stems.values() for p in by_format.values()} == {".mp3"}


@pytest.mark.parametrize("case", ["eight channels", "too long", "not audio", "not a song file", "no song"])
def test_a_bad_song_is_a_message_and_the_next_cover_works(tmp_path, song_path, case):
    context = cover_context(tmp_path, max_audio_seconds=3.0)
    if case == "eight channels":
        path = write_song(tmp_path / "surround.wav", channels=8)
        expect = ["8 channels", "mono or stereo"]
    elif case == "too long":
        path = write_song(tmp_path / "long.wav", seconds=4.0)
        expect = ["'long.wav' is", "a cover takes songs up to"]
    elif case == "not audio":
        path = tmp_path / "notes.wav"
        path.write_text("this is a text file with a .wav name\n" * 20)
        expect = ["notes.wav"]
    elif case == "not a song file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        expect = ["'notes.txt' is not a song file we accept"]
    else:
        path = None
        expect = ["Upload a song first."]
    last = finished(run_job(cover_request(path), context))
    assert last.outcome is None and last.error
    for words in expect:
        assert words in last.error, last.error
    assert "Traceback" not in last.error and str(tmp_path) not in last.error
    assert context.jobs.slots.running == 0 and context.jobs.slots.waiting == 0
    good = finished(run_job(cover_request(song_path, formats=("wav",), make_zip=False), context))
    assert good.error is None and Path(good.outcome.result.stems["mix"]["wav"]).is_file()


def test_closing_the_stream_stops_the_cover_and_frees_the_slot(context, tmp_path):
    from svc_core.ui.cover_job import STOPPED, CoverJob

    job = CoverJob(cover_request(write_song(tmp_path / "stop.wav", seconds=6.0, seed=3)), context)
    stream = job.run()
    for update in stream:
        if update.stage.startswith("separate"):
            break
    assert not update.finished
    stream.close()
    assert job.stopped.wait(GUARD_SECONDS)
    assert job.watch.reason == STOPPED
    assert context.jobs.slots.running == 0 and context.jobs.slots.waiting == 0
    assert context.jobs.cache.peek(VOICE).lock.acquire(blocking=False)  # the voice was let go too
    context.jobs.cache.peek(VOICE).lock.release()


def test_a_cover_over_its_time_budget_is_stopped_with_the_reason(tmp_path, song_path):
    context = cover_context(tmp_path, max_job_seconds=0.01)  # the server's cap: every cover is over it
    last = finished(run_job(cover_request(song_path), context))
    assert last.outcome is None
    assert "used up its time budget" in last.error and "--max-job-seconds" in last.error
    assert context.jobs.slots.running == 0


def test_one_person_cannot_queue_more_than_their_share(tmp_path, song_path):
    from svc_core.ui.cover_job import CoverJob

    context = cover_context(tmp_path, per_client=1)
    first = CoverJob(cover_request(write_song(tmp_path / "first.wav", seconds=6.0, seed=4)), context, "ip:1.2.3.4")
    stream = first.run()
    for update in stream:
        if update.stage.startswith("separate"):
            break
    second = finished(run_job(cover_request(song_path), context, "ip:1.2.3.4"))
    assert "You already have 1 conversion running or queued" in second.error
    other = finished(run_job(cover_request(song_path, make_zip=False), context, "ip:5.6.7.8"))
    assert other.error is None  # another person waits for the slot and gets it
    stream.close()
    assert first.stopped.wait(GUARD_SECONDS)


@pytest.mark.parametrize("extra, words", [
    (dict(reverb=2.0), "reverb is 2.0; it must be 0 to 1."),
    (dict(target_lufs=0.0), "target_lufs is 0.0 LUFS; it must be -40 to -5 LUFS."),
    (dict(formats=("ogg",)), "Unknown output format 'ogg'; choose from wav, flac, mp3."),
    (dict(formats=()), "Choose at least one output format"),
    (dict(key="sideways"), "key is 'sideways'; it must be 'auto'"),
    (dict(key="manual", transpose=30), "transpose is 30.0 semitones; it must be -24 to 24 semitones."),
    (dict(separator="nonesuch"), "Unknown separator 'nonesuch'. Choose one of:"),
    (dict(separator="mdx"), "The 'mdx' separator needs a model file"),
    (dict(separator="mdx:../../etc/passwd"), "Unknown separator 'mdx:../../etc/passwd'"),
])
def test_settings_out_of_range_are_refused_before_the_job_queues(context, song_path, extra, words):
    last = finished(run_job(cover_request(song_path, **extra), context))
    assert words in last.error, last.error
    assert "time budget" not in last.log  # refused before taking a place


def test_the_separator_menu_shows_quality_and_speed(tmp_path):
    from svc_core.separation.registry import separator_entry, separator_status
    from svc_core.ui.cover_choices import separator_choices
    from svc_core.ui.cover_tab import separator_menu

    choices = separator_choices(tmp_path / "no-such-folder")
    runnable = {name for name, why in separator_status().items() if why is None
                and separator_entry(name).kind != "community"}
    assert {c.value for c in choices} == runnable and SEPARATOR in runnable
    hpss = next(c for c in choices if c.value == SEPARATOR)
    assert hpss.label == f"{separator_entry(SEPARATOR).label}: {separator_entry(SEPARATOR).description}"
    pairs, default = separator_menu(choices)
    assert default == ("starter" if "starter" in runnable else pairs[0][1])


def test_a_community_model_file_in_the_folder_is_offered_and_covers(tmp_path, song_path):
    """A UVR MDX-Net .onnx (random weights, upstream layout, its settings in a .yaml beside it) dropped in the
    separation models folder is offered as "mdx:<file>" with its family's words, and a cover runs with it."""
    from separation_factories import make_mdx_onnx, write_yaml
    from svc_core.ui.cover_choices import separator_choices

    context = cover_context(tmp_path)
    folder = context.separation_dir / "MDX_Net_Models"
    folder.mkdir(parents=True)
    write_yaml(folder / "Tiny_Inst.onnx.yaml", make_mdx_onnx(folder / "Tiny_Inst.onnx"))
    community = [c for c in separator_choices(context.separation_dir) if c.kind == "community"]
    assert [(c.value, c.model_path.name) for c in community] == [("mdx:MDX_Net_Models/Tiny_Inst.onnx",
                                                                  "Tiny_Inst.onnx")]
    assert community[0].label.startswith("MDX-Net: Tiny_Inst (Tiny_Inst.onnx): UVR-MDX-NET")
    last = finished(run_job(cover_request(song_path, separator="mdx:MDX_Net_Models/Tiny_Inst.onnx",
                                          make_zip=False), context))
    assert last.error is None, last.log
    assert "separator: MDX-Net: Tiny_Inst" in last.log
    assert sf.info(str(last.outcome.result.stems["accompaniment"]["wav"])).frames == sf.info(str(song_path)).frames
    # the same file as a second pass over the vocals: lead/backing split, then de-reverb
    value = community[0].value
    last = finished(run_job(cover_request(song_path, lead_model=value, dereverb_model=value, make_zip=False),
                            context))
    assert last.error is None, last.log
    words = "HPSS (DSP baseline) + MDX-Net: Tiny_Inst (lead/backing) + MDX-Net: Tiny_Inst (de-reverb)"
    assert f"separator: {words}" in last.log and last.outcome.separator == words
    assert "(lead)" in last.outcome.result.separator and "(dereverb)" in last.outcome.result.separator
    last = finished(run_job(cover_request(song_path, lead_model="mdx:Karaoke.onnx"), context))
    assert last.error == ("Unknown lead/backing model 'mdx:Karaoke.onnx'. Choose a model file of the separation "
                          f"models folder: {value}.")


def test_a_song_in_a_stereo_float_file_and_a_mono_file_both_cover(context, tmp_path):
    mono = write_song(tmp_path / "mono.flac", channels=1, seed=6)
    last = finished(run_job(cover_request(mono, make_zip=False), context))
    assert last.error is None, last.log
    mix, sr = sf.read(str(last.outcome.result.stems["mix"]["wav"]))
    assert mix.shape == (sf.info(str(mono)).frames, 2) and sr == 44100 and np.abs(mix).max() <= 1.0


def test_the_bar_weighs_the_stages_by_their_expected_work_and_learns_each_pair():
    from svc_core.cover import STAGES
    from svc_core.ui.cover_progress import CoverProgress, CoverRates, CoverWork, default_rates

    work = CoverWork("community", formats=2, shift_accompaniment=True)
    rates = default_rates(work)
    assert rates["separate"] > default_rates(CoverWork("dsp"))["separate"] and rates["export"] > 0
    progress = CoverProgress(rates)
    progress.at_least(0.03)
    assert progress.eta() is None  # nothing planned yet
    progress.start(10.0, now=0.0)
    total = sum(rates[s] for s in STAGES)
    progress.stage("separate", 0.5)
    assert progress.fraction == pytest.approx(0.03 + 0.97 * 0.5 * rates["separate"] / total)
    progress.stage("separate", 0.2)  # never back
    assert progress.fraction == pytest.approx(0.03 + 0.97 * 0.5 * rates["separate"] / total)
    done = 0.5 * rates["separate"] * 10
    assert progress.eta(now=4.0) == pytest.approx((total * 10 - done) * 4.0 / done)  # this job's own speed
    progress.stage("export", 1.0)
    assert progress.fraction == pytest.approx(1.0)
    learnt = CoverRates()
    learnt.learn("hpss|starter", {"separate": 3.0, "convert": 1.0, "key": 0.01}, 10.0)
    pair = learnt.for_pair("hpss|starter", CoverWork("dsp"))
    assert pair["separate"] == pytest.approx(0.3) and pair["convert"] == pytest.approx(0.1)
    assert pair["key"] == default_rates(CoverWork("dsp"))["key"]  # too short to learn from
    assert learnt.for_pair("hpss|other", CoverWork("dsp")) == default_rates(CoverWork("dsp"))
