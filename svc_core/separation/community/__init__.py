"""Community separation model families read from files the user downloads: UVR MDX-Net ONNX (mdx.py), Demucs v4
(demucs.py), BS-/Mel-Band-RoFormer (roformer.py). files.py finds and identifies such files in a folder."""
