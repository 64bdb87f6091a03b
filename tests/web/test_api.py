"""The `/convert` endpoint through gradio_client on a real server and the real engine (tiny voice, 2 s clip)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import soundfile as sf

from audio_factories import sung_phrase

API = "/convert"


def own_clip(tmp_path: Path, name: str, gain: float) -> tuple[Path, Path]:
    """(examples folder, clip) for a test's own server. Gradio keeps files by content hash, and closing a server
    deletes what it kept, which must not include the session server's copy of the shared example clip: so each
    own server gets a clip of its own (another gain)."""
    examples = tmp_path / "examples"
    examples.mkdir()
    clip = examples / name
    sf.write(clip, gain * sung_phrase(2.0, gap_every=1.0, gap=0.6), 44100, subtype="PCM_16")
    return examples, clip


def convert(client, clip, speaker="alto", transpose=0, f0="pm", **extra):
    from gradio_client import handle_file

    args = dict(audio=handle_file(str(clip)), model="demo-voice", speaker=speaker, transpose=transpose,
                f0_predictor=f0)
    args.update(extra)
    return client.predict(**args, api_name=API)


def test_convert_round_trip(client, web_voice, tmp_path):
    # a clip no other test converts (slightly other gain), so its f0 and units are computed here, not cached
    clip = tmp_path / "sung_phrase.wav"
    sf.write(clip, 0.97 * sf.read(str(web_voice.clip), dtype="float32")[0], 44100, subtype="PCM_16")
    audio, log, timing, plot, summary, progress = convert(client, clip, transpose=3)
    info = sf.info(audio)
    assert info.samplerate == 44100
    assert abs(info.duration - sf.info(str(clip)).duration) < 0.05
    assert Path(audio).name == "sung_phrase_demo-voice_alto_+3.wav"
    assert "piece 1/" in log and "synthesizer" in log and "done:" in log
    stages = [row[0] for row in timing["data"]]
    assert {"f0", "encoder", "synthesizer", "total", "real-time factor"} <= set(stages)
    assert {row[2] for row in plot["data"]} >= {"source after transpose"}
    assert "real-time factor" in summary
    assert 'data-state="done"' in progress


def test_api_is_documented_under_convert(client):
    info = client.view_api(return_format="dict", print_info=False)
    endpoint = info["named_endpoints"][API]
    names = [p["parameter_name"] for p in endpoint["parameters"]]
    assert names == ["audio", "model", "speaker", "transpose", "f0_predictor", "auto_f0", "cluster_ratio",
                     "noise_scale", "slice_db", "pad_seconds", "clip_seconds", "crossfade_seconds", "loudness_mix",
                     "backend", "vocoder_precision", "encoder_precision", "shallow_diffusion", "only_diffusion",
                     "k_step", "diffusion_method", "diffusion_speedup", "second_encoding", "enhance",
                     "enhancer_adaptive_key", "protect", "filter_radius",
                     "resample_sr"]  # issue #21's inputs, then #22's, last: older calls keep working
    assert [r["component"] for r in endpoint["returns"]][:2] == ["Audio", "Textbox"]
    assert set(info["named_endpoints"]) == {API, "/cover"}  # the page's helper events are private


def test_onnx_backend_exports_once_and_reports_its_provider(client, server, web_voice):
    """backend=onnx: the voice is exported on first use, the page says which execution provider ran, and the
    audio matches the torch backend's graph within the ONNX parity tolerance."""
    import numpy as np

    audio, log, timing, _, summary, _ = convert(client, web_voice.clip, transpose=2, backend="onnx")
    assert "exporting it to ONNX" in log
    assert "backend: onnxruntime CPUExecutionProvider" in log and "encoder on ONNX Runtime" in log
    assert "Synthesizer backend: onnxruntime CPUExecutionProvider" in summary
    exports = sorted((server.state.work_dir / "onnx").glob("*.onnx"))
    encoders = [p for p in exports if p.name.startswith("encoder-")]  # the content encoder, exported once too
    assert len(encoders) == 1 and json.loads(Path(str(encoders[0]) + ".json").read_text())["kind"] == "encoder"
    main = [p for p in exports if not p.name.endswith((".prior.onnx", ".dec.onnx")) and p not in encoders]
    assert len(main) == 1 and Path(str(main[0]) + ".json").is_file()
    stem = main[0].name[:-5]
    assert {p.name for p in exports} - {encoders[0].name} == {f"{stem}.onnx", f"{stem}.prior.onnx",
                                                               f"{stem}.dec.onnx"}  # split pair
    assert "decoder" in json.loads(Path(str(main[0]) + ".json").read_text())["split"]
    again, log2, *_ = convert(client, web_voice.clip, transpose=2, backend="onnx")
    assert "voice already in memory" in log2
    assert sorted((server.state.work_dir / "onnx").glob("*.onnx")) == exports
    a, _ = sf.read(audio)
    b, _ = sf.read(again)
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-4  # same inputs, same seed: same audio
    _, torch_log, *_ = convert(client, web_voice.clip, transpose=2, backend="torch")
    assert "backend: torch eager" in torch_log


def test_vocoder_precision_choice(client, web_voice):
    """bf16 is offered only where the CPU runs it natively; the log says it ran; fp16 (CUDA only) is refused."""
    import numpy as np
    from gradio_client.exceptions import AppError

    from svc_core.precision import cpu_has_native_bf16

    with pytest.raises(AppError) as err:
        convert(client, web_voice.clip, vocoder_precision="fp16")
    assert "fp16 is not in the list of choices" in str(err.value)
    if cpu_has_native_bf16():
        low, log, *_ = convert(client, web_voice.clip, vocoder_precision="bf16")
        assert "; vocoder bf16" in log
        ref, _ = sf.read(convert(client, web_voice.clip)[0])
        got, _ = sf.read(low)
        assert got.shape == ref.shape and np.abs(got - ref).max() < 0.05


def test_encoder_precision_choice(client, web_voice):
    """Encoder bf16 (where the CPU has it) runs the torch content encoder in bf16 and says so; the ONNX backend,
    whose encoder is an ONNX export, refuses it with a message; fp16 (CUDA only) is not offered on a CPU."""
    import numpy as np
    from gradio_client.exceptions import AppError

    from svc_core.precision import cpu_has_native_bf16

    with pytest.raises(AppError) as err:
        convert(client, web_voice.clip, encoder_precision="fp16")
    assert "fp16 is not in the list of choices" in str(err.value)
    if not cpu_has_native_bf16():
        return
    low, log, *_ = convert(client, web_voice.clip, encoder_precision="bf16")
    assert "; encoder bf16" in log
    ref, _ = sf.read(convert(client, web_voice.clip)[0])
    got, _ = sf.read(low)
    assert got.shape == ref.shape and 0 < np.abs(got - ref).max() < 0.05
    with pytest.raises(AppError, match="is an ONNX file"):
        convert(client, web_voice.clip, backend="onnx", encoder_precision="bf16")
    assert convert(client, web_voice.clip)[0]


def test_int8_vocoder_on_the_onnx_backend(client, server, web_voice):
    """int8 with backend=onnx: the voice's int8 vocoder is calibrated on the example clips once and used; the
    torch backend refuses int8 with a message and the server keeps serving."""
    import numpy as np
    from gradio_client.exceptions import AppError

    audio, log, *_ = convert(client, web_voice.clip, backend="onnx", vocoder_precision="int8")
    assert "making this voice's int8 vocoder" in log and "int8 vocoder ready" in log and "; vocoder int8" in log
    assert len(list((server.state.work_dir / "onnx").glob("*.dec.int8.onnx"))) == 1
    again, log2, *_ = convert(client, web_voice.clip, backend="onnx", vocoder_precision="int8")
    assert "making this voice's int8 vocoder" not in log2
    ref, _ = sf.read(convert(client, web_voice.clip, backend="onnx")[0])
    a, _ = sf.read(audio)
    b, _ = sf.read(again)
    assert np.array_equal(a, b) and a.shape == ref.shape and 0 < np.abs(a - ref).max() < 0.1
    with pytest.raises(AppError, match="int8 runs on the ONNX backend"):
        convert(client, web_voice.clip, backend="torch", vocoder_precision="int8")
    assert convert(client, web_voice.clip)[0]


def test_unknown_backend_is_a_message(client, web_voice):
    from gradio_client.exceptions import AppError

    from svc_core.errors import OptionError
    from svc_core.ui import backends

    with pytest.raises(AppError) as err:  # the radio button rejects it before the engine sees it
        convert(client, web_voice.clip, backend="tensorrt")
    assert "'tensorrt'" in str(err.value) and "['torch', 'onnx']" in str(err.value)
    with pytest.raises(OptionError, match="Unknown backend 'tensorrt'; choose one of: torch, onnx"):
        backends.check_backend("tensorrt")  # the engine-side check (Python API callers, ConvertRequest)
    assert backends.check_backend(None) == "torch" and backends.check_backend(" ORT ") == "onnx"


def test_bad_upload_gives_readable_error_then_next_request_works(client, web_voice, tmp_path):
    from gradio_client.exceptions import AppError

    fake = tmp_path / "not_audio.wav"
    fake.write_text("this is a text file with a .wav name\n" * 20)
    with pytest.raises(AppError) as err:
        convert(client, fake)
    message = str(err.value)
    assert "not_audio.wav" in message and "Traceback" not in message

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(AppError) as err:
        convert(client, text)
    assert "is not an audio file we accept" in str(err.value)

    audio, log, *_ = convert(client, web_voice.clip)  # the server keeps serving
    assert Path(audio).is_file() and "done:" in log


def test_an_empty_speaker_picks_a_single_speaker_voice_s_only_one(web_voice, make_server, tmp_path):
    """API callers may leave the speaker empty for a one-speaker voice (a 3-speaker voice refuses it: see the
    errors test below); the result is named after that speaker."""
    import dataclasses

    from gradio_client import Client, handle_file

    from factories import make_upstream_checkpoint

    make_upstream_checkpoint(tmp_path / "models" / "solo-voice", speech_encoder="vec256l9", n_speakers=1, seed=9,
                             speakers={"soloist": 0})
    examples, clip = own_clip(tmp_path, "solo.wav", 0.85)
    voice = dataclasses.replace(web_voice, models_dir=tmp_path / "models", examples_dir=examples)
    srv = make_server(voice, tmp_path / "work")
    try:
        client = Client(srv.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
        audio, log, *_ = client.predict(audio=handle_file(str(clip)), model="solo-voice", speaker="", transpose=1,
                                        f0_predictor="pm", api_name=API)
        assert "converting: speaker soloist, transpose +1" in log
        assert Path(audio).name == "solo_solo-voice_soloist_+1.wav" and abs(sf.info(audio).duration - 2.0) < 0.05
    finally:
        srv.demo.close()


def test_engine_errors_are_messages(client, web_voice):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        convert(client, web_voice.clip, speaker="soprano")
    assert "Unknown speaker 'soprano'" in str(err.value) and "alto (0)" in str(err.value)
    with pytest.raises(AppError) as err:  # left empty: only a single-speaker voice may
        convert(client, web_voice.clip, speaker="")
    assert "has 3 speakers: alto (0), tenor (1), bass (2). Choose one with the speaker field" in str(err.value)
    with pytest.raises(AppError) as err:
        convert(client, web_voice.clip, cluster_ratio=0.5)
    assert "no cluster or index file is loaded" in str(err.value)
    with pytest.raises(AppError) as err:
        convert(client, web_voice.clip, f0="rmvpe")
    assert "rmvpe.pt" in str(err.value)


def test_two_users_get_their_own_results(server, web_voice):
    from gradio_client import Client, handle_file

    jobs = []
    for speaker, transpose in (("tenor", 5), ("bass", -7)):
        c = Client(server.url, verbose=False, analytics_enabled=False)
        jobs.append((speaker, transpose, c.submit(handle_file(str(web_voice.clip)), "demo-voice", speaker, transpose,
                                                  "pm", api_name=API)))
    for speaker, transpose, job in jobs:
        audio, log, *_ = job.result(timeout=300)
        assert Path(audio).name == f"sung_phrase_demo-voice_{speaker}_{transpose:+d}.wav"
        assert f"speaker {speaker}, transpose {transpose:+d}" in log
        other = "bass" if speaker == "tenor" else "tenor"
        assert other not in log


def test_full_queue_gives_a_readable_message(web_voice, make_server, tmp_path):
    """One conversion running (held on its voice's lock), one waiting: the third is turned away at once."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    # Its own clip and no examples: closing a server deletes the files it cached, and Gradio's cache is shared
    # by content hash with the session server.
    clip = tmp_path / "other_phrase.wav"
    sf.write(clip, sung_phrase(2.0, seed=11), 44100, subtype="PCM_16")
    (tmp_path / "no-examples").mkdir()
    srv = make_server(web_voice, tmp_path / "work", concurrency=1, queue_size=1,
                      examples_dir=tmp_path / "no-examples")
    try:
        warm = Client(srv.url, verbose=False, analytics_enabled=False)
        convert(warm, clip)  # loads the voice
        voice = srv.state.cache.peek("demo-voice")
        with voice.lock:
            clients = [Client(srv.url, verbose=False, analytics_enabled=False) for _ in range(3)]
            running = clients[0].submit(handle_file(str(clip)), "demo-voice", "alto", 0, "pm",
                                        api_name=API)
            _wait_for(lambda: any("waiting for another conversion" in (o[1] or "") for o in running.outputs()))
            waiting = clients[1].submit(handle_file(str(clip)), "demo-voice", "alto", 0, "pm",
                                        api_name=API)
            _wait_for(lambda: srv.state.jobs.slots.waiting == 1)  # it waits for the slot in the job queue
            rejected = clients[2].submit(handle_file(str(clip)), "demo-voice", "alto", 0, "pm",
                                         api_name=API)
            with pytest.raises((AppError, ValueError, Exception)) as err:
                rejected.result(timeout=120)
            assert "queue is full" in str(err.value).lower()
        assert "done:" in running.result(timeout=300)[1]
        assert "done:" in waiting.result(timeout=300)[1]
    finally:
        srv.demo.close()


def _wait_for(condition, limit: float = 120.0) -> None:
    """Poll until condition() holds (a guard against hanging, not a timing assertion)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


def test_upload_size_is_limited(web_voice, make_server, tmp_path):
    from gradio_client import Client

    srv = make_server(web_voice, tmp_path / "work", max_file_size=50_000, examples_dir=tmp_path / "none")
    try:
        small = Client(srv.url, verbose=False, analytics_enabled=False)
        with pytest.raises(Exception) as err:
            convert(small, web_voice.clip)  # 176 kB
        assert "size" in str(err.value).lower() and "Traceback" not in str(err.value)
    finally:
        srv.demo.close()


def test_the_starter_world_voice_through_the_page(web_voice, make_server, tmp_path):
    """The shipped default (a WORLD voice) converts through the real server; what it cannot do is a message."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from svc_core.ui.settings import STARTER_VOICES

    examples, clip = own_clip(tmp_path, "phrase.wav", 0.8)
    srv = make_server(web_voice, tmp_path / "work", shipped_voices=(STARTER_VOICES,), examples_dir=examples)
    try:
        client = Client(srv.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))

        def run(**extra):
            args = dict(audio=handle_file(str(clip)), model="starter", speaker="flite_awb", transpose=-3,
                        f0_predictor="pm")
            args.update(extra)
            return client.predict(**args, api_name=API)

        audio, log, timing, plot, summary, progress = run()
        assert abs(sf.info(audio).duration - sf.info(str(clip)).duration) < 0.05
        assert "done:" in log and {row[2] for row in plot["data"]} >= {"source after transpose"}
        with pytest.raises(AppError) as err:
            run(backend="onnx")
        assert "WORLD voice" in str(err.value) and "Traceback" not in str(err.value)
        audio, log, *_ = run()  # still serving
        assert Path(audio).is_file()
    finally:
        srv.demo.close()


def test_a_url_input_is_not_fetched(client, web_voice, outbound):
    """A public link must not let callers make the server fetch anything (SSRF, outbound traffic): an audio input
    given as a URL (here on 127.0.0.1) is refused with a message, no request reaches that address, no name is looked
    up elsewhere (Gradio's own guard would ask dns.google), and the server keeps serving."""
    import http.server
    import threading

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    folder = str(web_voice.clip.parent)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Handler(*a, directory=folder))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{web_voice.clip.name}"
        with pytest.raises(AppError) as err:
            client.predict(audio=handle_file(url), model="demo-voice", speaker="alto", transpose=0,
                           f0_predictor="pm", api_name=API)
        assert hits == [] and "does not fetch audio from URLs" in str(err.value)
    finally:
        httpd.shutdown()
    assert outbound() == []
    audio, log, *_ = convert(client, web_voice.clip)
    assert Path(audio).is_file() and "done:" in log


def test_an_upstream_onnx_voice_through_the_page(web_voice, make_server, tmp_path):
    """A voice folder as upstream / MoeVoiceStudio users have it (<name>_SoVits.onnx, config.json and the content
    encoder as vec-256-layer-9.onnx, no G_*.pth) runs on ONNX Runtime even when torch is asked for; the int8
    vocoder it cannot have is a message and the server keeps serving."""
    import dataclasses

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from svc_core.onnx import export_encoder, export_synthesizer
    from upstream_onnx_factories import as_upstream_encoder, as_upstream_synthesizer

    folder = tmp_path / "models" / "onnx-voice"
    source = web_voice.models_dir / "demo-voice"
    export_synthesizer(source / "G_0.pth", source / "config.json", tmp_path / "ours" / "model.onnx", split=False)
    as_upstream_synthesizer(tmp_path / "ours" / "model.onnx", source / "config.json", folder)
    export_encoder("vec256l9", None, tmp_path / "ours" / "vec256l9.onnx")  # the server's pretrain weights
    as_upstream_encoder(tmp_path / "ours" / "vec256l9.onnx", folder / "vec-256-layer-9.onnx")
    examples, clip = own_clip(tmp_path, "phrase.wav", 0.9)
    voice = dataclasses.replace(web_voice, models_dir=tmp_path / "models", examples_dir=examples)
    srv = make_server(voice, tmp_path / "work")
    try:
        assert [label for label, _ in srv.state.library.choices() if "onnx-voice" in label] == [
            "onnx-voice (3 speakers; so-vits-svc, ONNX file; vec256l9)"]
        client = Client(srv.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))

        def run(**extra):
            return client.predict(audio=handle_file(str(clip)), model="onnx-voice", speaker="tenor", transpose=0,
                                  f0_predictor="pm", api_name=API, **extra)

        audio, log, *_ = run()  # backend left at torch
        assert "onnx-voice is an ONNX file (nyaru_SoVits.onnx): it runs on ONNX Runtime" in log
        assert "backend: onnxruntime CPUExecutionProvider" in log and "encoder on ONNX Runtime" in log
        assert "exporting" not in log and abs(sf.info(audio).duration - 2.0) < 0.05
        assert not list((tmp_path / "work").rglob("*.onnx"))  # nothing was exported for it
        with pytest.raises(AppError) as err:
            run(backend="onnx", vocoder_precision="int8")
        assert "split export" in str(err.value) and "Traceback" not in str(err.value)
        again, *_ = run(backend="onnx")
        assert Path(again).is_file()
    finally:
        srv.demo.close()
