"""The `/cover` endpoint through gradio_client on a real server (the shipped WORLD starter voice, the HPSS
separator, svc_core.cover.run_cover): documented inputs, the stems and the JSON summary, bad songs as messages."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from web.cover_songs import SEPARATOR, SPEAKER, VOICE, write_song

API = "/cover"
INPUTS = ["song", "model", "speaker", "separator", "key", "transpose", "f0_predictor", "shift_accompaniment",
          "reverb", "target_lufs", "formats", "make_zip", "vocal_gain_db", "accompaniment_gain_db", "auto_f0",
          "cluster_ratio", "noise_scale", "lead_model", "dereverb_model"]


@pytest.fixture(scope="module")
def cover_server(web_voice, make_server, tmp_path_factory):
    from svc_core.ui.settings import STARTER_VOICES

    root = tmp_path_factory.mktemp("cover-api")
    examples = root / "examples"  # its own (empty): closing this server removes what Gradio cached for it
    examples.mkdir()
    srv = make_server(web_voice, root / "work", shipped_voices=(STARTER_VOICES,), examples_dir=examples,
                      separation_dir=root / "separation_models", concurrency=1, queue_size=4)
    srv.songs = root / "songs"
    yield srv
    srv.demo.close()


@pytest.fixture(scope="module")
def cover_client(cover_server, client_for):
    return client_for(cover_server)


def cover(client, song: Path, **extra):
    from gradio_client import handle_file

    args = dict(song=handle_file(str(song)), model=VOICE, speaker=SPEAKER, separator=SEPARATOR, f0_predictor="pm")
    args.update(extra)
    return client.predict(**args, api_name=API)


def test_the_cover_endpoint_is_documented(cover_client):
    info = cover_client.view_api(return_format="dict", print_info=False)
    assert set(info["named_endpoints"]) == {"/convert", API}
    endpoint = info["named_endpoints"][API]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == INPUTS
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in endpoint["parameters"]}
    assert defaults["key"] == "auto" and defaults["target_lufs"] == -14.0 and defaults["formats"] == ["wav"]
    assert defaults["make_zip"] is True and defaults["model"] == VOICE
    assert [r["component"] for r in endpoint["returns"]] == ["Audio"] * 4 + ["File", "Json", "Textbox", "Html"]


def test_a_cover_through_the_api_returns_the_stems_and_a_summary(cover_client, cover_server):
    song = write_song(cover_server.songs / "api_song.wav", seconds=2.0, seed=1)
    original, converted, accompaniment, mix, files, summary, log, progress = cover(
        cover_client, song, formats=["wav", "mp3"], key="manual", transpose=2, reverb=0.3)
    frames = sf.info(str(song)).frames
    for path, stem in ((original, "original_vocals"), (converted, "converted_vocals"),
                       (accompaniment, "accompaniment"), (mix, "mix")):
        assert Path(path).name == f"api_song_{stem}.wav" and sf.info(path).frames == frames
    names = sorted(Path(f).name for f in files)
    assert names == sorted([f"api_song_{s}.{fmt}" for s in ("original_vocals", "converted_vocals",
                                                            "accompaniment", "mix") for fmt in ("wav", "mp3")]
                           + ["api_song_cover.zip"])
    with zipfile.ZipFile(next(f for f in files if f.endswith(".zip"))) as z:
        assert len(z.namelist()) == 8
    assert summary["transpose"] == 2 and isinstance(summary["suggested_transpose"], int)
    assert summary["voice"] == VOICE and summary["speaker"] == SPEAKER and summary["song_seconds"] == 2.0
    assert abs(summary["mix_lufs"] + 14.0) <= 1.0
    assert summary["files"]["mix"] == {"wav": "api_song_mix.wav", "mp3": "api_song_mix.mp3"}
    assert "stage export" in log and "done:" in log and 'data-state="done"' in progress


def test_a_bad_song_is_a_message_and_the_server_keeps_serving(cover_client, cover_server, tmp_path):
    from gradio_client.exceptions import AppError

    surround = write_song(tmp_path / "surround.wav", channels=8, seed=2)
    with pytest.raises(AppError) as err:
        cover(cover_client, surround)
    assert "'surround.wav' has 8 channels; covers take mono or stereo songs" in str(err.value)
    fake = tmp_path / "fake.mp3"
    fake.write_text("not an mp3\n" * 40)
    with pytest.raises(AppError) as err:
        cover(cover_client, fake)
    assert "fake.mp3" in str(err.value) and "Traceback" not in str(err.value)
    with pytest.raises(AppError) as err:
        cover(cover_client, surround, separator="nonesuch")
    assert "Unknown separator 'nonesuch'" in str(err.value)
    song = write_song(cover_server.songs / "after.wav", seconds=1.5, seed=3)
    *_, summary, log, _ = cover(cover_client, song, make_zip=False)
    assert summary["zip"] is None and "done:" in log
    assert cover_server.state.jobs.slots.running == 0


def test_cancelling_a_cover_frees_its_slot(cover_client, cover_server):
    """gradio_client's job.cancel() (the page's Stop does the same) closes the update stream: the worker stops at
    its next checkpoint and gives the slot back; the next cover runs."""
    import time

    from gradio_client import handle_file

    song = write_song(cover_server.songs / "to_cancel.wav", seconds=8.0, seed=4)
    job = cover_client.submit(song=handle_file(str(song)), model=VOICE, speaker=SPEAKER, separator=SEPARATOR,
                              f0_predictor="pm", api_name=API)
    slots = cover_server.state.jobs.slots
    end = time.monotonic() + 120  # hang guards, not timings
    while slots.running == 0 and not job.done():
        assert time.monotonic() < end, "the cover never started"
        time.sleep(0.05)
    job.cancel()
    while slots.running or slots.waiting:
        assert time.monotonic() < end, "the cancelled cover kept its slot"
        time.sleep(0.05)
    assert not list(cover_server.state.jobs.results_dir.rglob("to_cancel_mix.wav"))  # it stopped before export
    short = write_song(cover_server.songs / "after_cancel.wav", seconds=1.5, seed=5)
    *_, summary, log, _ = cover(cover_client, short, make_zip=False)
    assert "done:" in log and summary["song_seconds"] == 1.5
