"""torchcrepe and torchfcpe import even though the installed torchaudio cannot load."""
import subprocess
import sys


def test_crepe_and_fcpe_import_in_a_fresh_interpreter():
    code = ("from svc_core.torchaudio_compat import ensure_torchaudio; mode = ensure_torchaudio();"
            "import torchcrepe, torchfcpe, torchaudio.transforms as T, torch;"
            "x = T.Resample(44100, 16000)(torch.zeros(1, 44100)); assert x.shape[-1] == 16000; print(mode)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] in ("native", "stand-in")
