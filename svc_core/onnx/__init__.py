"""ONNX backend: export with upstream's interface (spec h) and run on ONNX Runtime with the shared pipeline.

    from svc_core.onnx import export_synthesizer, OnnxSvc
    manifest = export_synthesizer("G_30400.pth", "config.json", "model.onnx")   # + model.onnx.json
    svc = OnnxSvc("model.onnx", encoder_path="pretrain/checkpoint_best_legacy_500.pt")
    export_encoder("vec768l12", "pretrain/checkpoint_best_legacy_500.pt", "vec768l12.onnx", int8=True)
    svc = OnnxSvc("model.onnx", encoder=OnnxEncoder("vec768l12.int8.onnx"))     # encoder on ORT too
    export_rvc("voice.pth", "voice.onnx")              # an RVC voice, in RVC's exporter interface (+ split pair)
    voice = RvcOnnxVoice("voice.onnx")                 # ours or RVC's export: RvcVoice's synthesize on ORT

onnxruntime / onnx are imported only when a session is made or a file is exported.
"""
from .encoder_export import OnnxEncoder, export_encoder, int8_path
from .export import MANIFEST_KEY, export_synthesizer, interface, manifest_path, read_manifest
from .graph import FrameSineSource, SynthesizerGraph
from .runtime import SessionInfo, make_session, physical_cores, pick_providers
from .rvc_export import export_rvc
from .rvc_runtime import RvcOnnxVoice, is_rvc_onnx
from .svc import GraphSvc, OnnxSvc, prior_noise

__all__ = [
    "MANIFEST_KEY", "export_synthesizer", "interface", "manifest_path", "read_manifest", "FrameSineSource",
    "SynthesizerGraph", "SessionInfo", "make_session", "physical_cores", "pick_providers", "GraphSvc", "OnnxSvc",
    "prior_noise", "OnnxEncoder", "export_encoder", "int8_path", "export_rvc", "RvcOnnxVoice", "is_rvc_onnx",
]
