"""phonevec: a small speaker-independent content encoder trained here (CTC on espeak-ng phones).

Submodules (import what you need; this package import stays light so the encoder registry can refer to it):
`sentences`/`wordlists` (text), `text` (phonemiser + phone inventory), `voices` + `corpus` (TTS rendering),
`augment` (WORLD pitch/formant, speed, loudness, noise, reverb), `features` (log-mel), `model` (conv + transformer,
CTC head), `checkpoint` (file format), `encoder` (the registered `phonevec256` ContentEncoder), `train`, `probe`.
CLI: `python -m svc_core.phonevec corpus|train|probe ...`.
"""
