# syntax=docker/dockerfile:1
# svc-studio web demo. CPU image by default; NVIDIA GPU image with a build arg (PyTorch CUDA wheels bundle the
# CUDA runtime, the host needs the NVIDIA driver + container toolkit, run with --gpus all and `--device cuda`):
#   docker build -t svc-studio:cpu .
#   docker build -t svc-studio:cu128 --build-arg TORCH_VARIANT=cu128 .
# Run (login required; models and encoder weights come from volumes, nothing is downloaded at run time):
#   docker run -p 127.0.0.1:7860:7860 -v "$PWD/models:/app/models:ro" -v "$PWD/pretrain:/app/pretrain:ro" \
#     -v "$PWD/users.txt:/run/secrets/svc_auth:ro" svc-studio:cpu
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# cpu | cu126 | cu128 ...: which PyTorch wheel index provides torch (requirements.txt pins the version)
ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SVC_PRETRAIN_DIR=/app/pretrain

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# ffmpeg: decoding browser recordings (webm/m4a); libsndfile1/libgomp1: audio I/O and OpenMP for torch/faiss;
# openssh-client: `--tunnel ssh`; rubberband-cli: a cover's accompaniment key shift (pyrubberband runs it); libportaudio2: `live` on local sound devices (sounddevice); tini: signals and zombie reaping for app.py and its ssh child.
# Debian bookworm versions are not pinned: the security archive replaces them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libsndfile1 libgomp1 libportaudio2 openssh-client rubberband-cli tini \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 svc \
 && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin svc

WORKDIR /app
COPY requirements.txt ./
RUN pip install --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" -r requirements.txt

COPY --chown=svc:svc app.py ./
COPY --chown=svc:svc svc_core ./svc_core
COPY --chown=svc:svc examples ./examples
COPY --chown=svc:svc voices ./voices
COPY --chown=svc:svc frp ./frp
RUN mkdir -p /app/models /app/pretrain /data \
 && chown svc:svc /app/models /app/pretrain /data

USER 10001:10001
VOLUME ["/app/models", "/app/pretrain"]
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u, urllib.error as e\ntry:\n    u.urlopen('http://127.0.0.1:7860/', timeout=4)\nexcept e.HTTPError as err:\n    sys.exit(err.code >= 500)\nexcept Exception:\n    sys.exit(1)"]

ENTRYPOINT ["tini", "--", "python", "app.py"]
# Listening on 0.0.0.0 inside the container needs a login: mount a USER:PASS file at /run/secrets/svc_auth
# (readable by uid 10001). Add `--device cuda` for the GPU image.
CMD ["--host", "0.0.0.0", "--port", "7860", "--models-dir", "/app/models", "--work-dir", "/data", \
     "--auth", "/run/secrets/svc_auth"]
