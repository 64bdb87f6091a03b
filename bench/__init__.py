"""Benchmarks of the torch and ONNX backends (`python -m bench`); never run by the test suite."""
