"""Starter voices (issue #4): one multi-speaker so-vits-svc model of four Debian TTS voices, built from nothing.

Submodules: `voices` (the four target voices and their singing ranges), `heldout` (texts never trained on),
`melody` (seeded melody generator), `corpus` (speech + singing dataset for `python -m svc_core preprocess`),
`model_config` (the small training config), `package` (release folder with a sha256 manifest).
CLI: `python -m svc_core.starter corpus|config|package ...`; the whole chain is scripts/build_starter_voices.sh.
"""
