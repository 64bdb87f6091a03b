"""`python -m svc_core infer` converts a wav with every f0 predictor that can run here, and fails readably."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint
from svc_core.cli import main
from svc_core.f0.rmvpe_model import E2E0

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    g, cfg = make_upstream_checkpoint(root / "model", speech_encoder="vec256l9", seed=11,
                                      speakers={"spk0": 0, "spk1": 1})
    encoder = make_contentvec_checkpoint(root / "pretrain" / "checkpoint_best_legacy_500.pt", seed=4)
    torch.manual_seed(0)
    torch.save({"model": E2E0().state_dict()}, root / "pretrain" / "rmvpe.pt")  # so-vits layout, random
    clip = root / "in.wav"
    sf.write(clip, np.stack([sung_phrase(2.0)] * 2, axis=1), 44100, subtype="PCM_16")  # stereo on purpose
    return {"model": g, "config": cfg, "encoder": encoder, "clip": clip, "pretrain": root / "pretrain",
            "root": root}


def _args(files, out, *extra):
    return ["infer", "-m", str(files["model"]), "-c", str(files["config"]), "-i", str(files["clip"]),
            "-o", str(out), "-s", "spk1", "-t", "3", "--encoder", str(files["encoder"]), *extra]


@pytest.mark.parametrize("f0", ["pm", "dio", "harvest", "crepe-tiny", "crepe", "fcpe", "rmvpe"])
def test_converts_with_each_predictor(files, f0, capsys, monkeypatch):
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(files["pretrain"]))
    out = files["root"] / f"out_{f0}.wav"
    assert main(_args(files, out, "--f0", f0, "--noise-scale", "0.3", "--slice-db", "-40")) == 0
    printed = capsys.readouterr().out
    assert f"f0 predictor: {f0}" in printed and "real-time factor" in printed
    for stage in ("f0", "encoder", "synthesizer"):
        assert stage in printed
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 44100 and audio.ndim == 1 and len(audio) == 2 * 44100
    assert np.abs(audio).max() > 1e-3


def test_rmvpe_path_option(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))  # nothing there: only --rmvpe can find it
    out = tmp_path / "o.wav"
    assert main(_args(files, out, "--rmvpe", str(files["pretrain"] / "rmvpe.pt"))) == 0
    assert "f0 predictor: rmvpe" in capsys.readouterr().out and out.exists()
    assert main(_args(files, out, "--f0", "rmvpe")) == 2
    assert "rmvpe.pt" in capsys.readouterr().err


def test_cluster_options(files, tmp_path, capsys):
    from svc_core.retrieval import save_kmeans

    rng = np.random.default_rng(0)
    kmeans = tmp_path / "kmeans_10000.pt"
    save_kmeans(kmeans, {"spk1": rng.standard_normal((32, 256)).astype(np.float32)})
    out = tmp_path / "o.flac"
    assert main(_args(files, out, "--f0", "pm", "--cluster", str(kmeans), "--cluster-ratio", "0.5")) == 0
    assert "retrieval" in capsys.readouterr().out
    assert sf.info(out).samplerate == 44100


@pytest.mark.parametrize("change, message", [
    (lambda f: ["-s", "nobody"], "spk0.*spk1"),
    (lambda f: ["-i", str(f["root"] / "missing.wav")], "does not exist"),
    (lambda f: ["--f0", "yin"], "yin"),
    (lambda f: ["--cluster-ratio", "3", "--cluster", str(f["model"])], "cluster"),
    (lambda f: ["--encoder", str(f["root"] / "nope.pt")], "checkpoint_best_legacy_500.pt|nope.pt"),
    (lambda f: ["--vocoder-precision", "fp16"], "fp16 is for CUDA GPUs"),
    (lambda f: ["--encoder-precision", "fp16"], "encoder_precision fp16 is for CUDA GPUs"),
    (lambda f: ["-o", str(f["clip"])], "'in.wav' is the input file: converting would overwrite it"),
    (lambda f: ["-o", str(f["root"] / "out")], r"no audio format for '\(no extension\)'"),
])
def test_errors_are_one_line(files, change, message, capsys, tmp_path):
    args = _args(files, tmp_path / "o.wav", "--f0", "pm")
    extra = change(files)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize("flag, refusal, ran", [
    ("--vocoder-precision", "AVX512-BF16 or AMX", r"synthesizer: torch eager, vocoder bf16"),
    ("--encoder-precision", "encoder_precision bf16 needs a CPU", r"; encoder: \S+ bf16;"),
])
def test_bf16_precision_options(files, tmp_path, capsys, flag, refusal, ran):
    from svc_core.precision import cpu_has_native_bf16

    out = tmp_path / "o.wav"
    if not cpu_has_native_bf16():
        assert main(_args(files, out, "--f0", "pm", flag, "bf16")) == 2
        assert refusal in capsys.readouterr().err
        return
    assert main(_args(files, out, "--f0", "pm", flag, "bf16")) == 0
    assert re.search(ran, capsys.readouterr().out)
    ref = tmp_path / "ref.wav"
    assert main(_args(files, ref, "--f0", "pm")) == 0
    a, b = sf.read(out, dtype="float32")[0], sf.read(ref, dtype="float32")[0]
    assert a.shape == b.shape and 0 < np.abs(a - b).max() < 0.05


def test_speaker_may_be_left_out_only_for_a_single_speaker_model(files, tmp_path, capsys):
    args = _args(files, tmp_path / "o.wav", "--f0", "pm")
    at = args.index("-s")
    del args[at:at + 2]
    assert main(args) == 2  # two speakers: the message names them and the option
    err = capsys.readouterr().err
    assert re.search(r"has 2 speakers: spk0 \(0\), spk1 \(1\)\. Choose one with -s", err), err
    g, cfg = make_upstream_checkpoint(tmp_path / "solo", speech_encoder="vec256l9", seed=12, n_speakers=1,
                                      speakers={"solo": 0})
    args[args.index("-m") + 1], args[args.index("-c") + 1] = str(g), str(cfg)
    assert main(args) == 0
    assert sf.info(tmp_path / "o.wav").duration == pytest.approx(2.0)


def test_batch_of_files_and_a_folder_into_an_output_folder(files, tmp_path, capsys):
    """Several -i files and folders convert into the -o folder with the model loaded once; an unreadable file is
    reported and skipped, the rest are written, and the exit status says something failed."""
    songs = tmp_path / "songs"
    songs.mkdir()
    for name, seconds in (("a.wav", 1.0), ("b.flac", 1.5)):
        sf.write(songs / name, sung_phrase(seconds), 44100)
    (songs / "notes.txt").write_text("not audio, not picked from the folder")
    (songs / "broken.wav").write_bytes(b"RIFF" + bytes(100))
    out = tmp_path / "converted"
    args = _args(files, out, "--f0", "pm", "--format", "flac")
    args[args.index("-i") + 1:args.index("-i") + 2] = [str(songs), str(files["clip"])]
    assert main(args) == 2
    captured = capsys.readouterr()
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_spk1_+3.flac", "b_spk1_+3.flac", "in_spk1_+3.flac"]
    assert [round(sf.info(out / n).duration, 2) for n in written] == [1.0, 1.5, 2.0]
    assert captured.out.count("load model") == 1 and "converted 3 of 4 in" in captured.out
    assert "error: broken.wav: " in captured.err and "1 of 4 conversions failed: broken.wav" in captured.err


def test_an_upstream_inference_main_command_runs_as_it_is(files, tmp_path, capsys, monkeypatch):
    """upstream's flags: -n names looked up in raw/ (".wav" added), -t and -s lists (each name with its transpose,
    for each speaker), -cm/-cr, -ns, -f0p, -wf, -lea; no -o: results/. Its diffusion/enhancer flags are refused."""
    from svc_core.retrieval import save_kmeans

    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    sf.write(tmp_path / "raw" / "song.wav", sung_phrase(1.0), 44100)
    sf.write(tmp_path / "raw" / "other.flac", sung_phrase(1.5), 44100)
    rng = np.random.default_rng(1)
    save_kmeans(tmp_path / "kmeans_10000.pt", {n: rng.standard_normal((16, 256)).astype(np.float32)
                                               for n in ("spk0", "spk1")})
    upstream = ["infer", "-m", str(files["model"]), "-c", str(files["config"]), "--encoder", str(files["encoder"]),
                "-n", "song", "other.flac", "-t", "0", "2", "-s", "spk0", "spk1", "-cm", "kmeans_10000.pt", "-cr",
                "0.5", "-ns", "0.3", "-f0p", "pm", "-wf", "flac", "-lea", "0.5", "-fr"]
    assert main(upstream) == 0
    written = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert written == ["other_spk0_+2.flac", "other_spk1_+2.flac", "song_spk0_+0.flac", "song_spk1_+0.flac"]
    assert "converted 4 of 4" in capsys.readouterr().out
    a, _ = sf.read(tmp_path / "results" / "song_spk0_+0.flac")
    b, _ = sf.read(tmp_path / "results" / "song_spk1_+0.flac")
    assert len(a) == len(b) == 44100 and not np.allclose(a, b, atol=1e-3)  # two speakers, two voices
    no_cluster = upstream[:upstream.index("-cm")] + ["-ns", "0.3", "-f0p", "pm", "-lea", "0.5", "-o", "plain/"]
    no_cluster[no_cluster.index("-s") + 1:no_cluster.index("-s") + 3] = ["spk0"]
    assert main(no_cluster) == 0
    c, _ = sf.read(tmp_path / "plain" / "song_spk0_+0.wav")
    assert len(c) == len(a) and not np.allclose(a, c, atol=1e-3)  # -cm/-cr changed the output
    assert main(upstream + ["-shd", "-ks", "50"]) == 2  # upstream's -shd looks for the model's diffusion/ folder
    assert "No diffusion model (model_*.pt with config.yaml) in" in capsys.readouterr().err
    assert main(upstream + ["-usm"]) == 2
    assert "-usm (--use_spk_mix): the spkmix.py speaker-mix schedule" in capsys.readouterr().err
    assert main(upstream[:upstream.index("-t") + 3] + ["1"]) == 2
    assert "3 transposes (-t) for 2 inputs" in capsys.readouterr().err


def test_an_output_folder_takes_a_single_input_too(files, tmp_path, capsys):
    assert main(_args(files, tmp_path, "--f0", "pm")) == 0  # an existing folder
    assert main(_args(files, str(tmp_path / "new") + "/", "--f0", "pm", "-t", "-2")) == 0  # a new one, ending in /
    assert (tmp_path / "in_spk1_+3.wav").is_file() and (tmp_path / "new" / "in_spk1_-2.wav").is_file()


@pytest.mark.parametrize("inputs, output, message", [
    (lambda f, d: [str(d)], lambda f, d: str(d / "one.wav"), "-o is the output folder, not a file"),
    (lambda f, d: [str(d), str(d / "x.wav")], lambda f, d: str(d / "out"), "would both be written to 'x_spk1_"),
    (lambda f, d: [str(d / "empty")], lambda f, d: str(d / "out"), "holds no audio files"),
])
def test_batch_mistakes_stop_before_anything_loads(files, tmp_path, capsys, inputs, output, message):
    (tmp_path / "empty").mkdir()
    sf.write(tmp_path / "x.wav", sung_phrase(1.0), 44100)
    args = _args(files, output(files, tmp_path), "--f0", "pm")
    args[args.index("-i") + 1:args.index("-i") + 2] = inputs(files, tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "load model" not in captured.out, captured.err


def test_module_entry_point_runs(files, tmp_path):
    out = tmp_path / "o.wav"
    proc = subprocess.run([sys.executable, "-m", "svc_core", *_args(files, out, "--f0", "pm", "--threads", "1")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "real-time factor" in proc.stdout and out.exists()
