"""ONNX files in the layouts upstream leaves (no svc-studio manifest), made from our own exports: upstream's
exporters need upstream's code, which does not run here. See svc_core/onnx/upstream_file.py."""
from __future__ import annotations

import shutil
from pathlib import Path


def as_upstream_synthesizer(onnx_path: Path, config_path: Path, folder: Path, with_config: bool = True,
                            name: str = "nyaru") -> Path:
    """`folder/<name>_SoVits.onnx`: our one-shot export without its manifest (+ config.json beside it, as in
    upstream's checkpoints/<name>/ layout)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]  # upstream's exporter writes no metadata of ours
    target = folder / f"{name}_SoVits.onnx"
    onnx.save(proto, str(target))
    if with_config:
        shutil.copy(config_path, folder / "config.json")
    return target


def as_upstream_encoder(ours: Path, target: Path) -> Path:
    """Our encoder export (wav [1, N] -> features [1, C, T]) rewired to the layout of upstream's `*-onnx` encoders
    (MoeSS's vec-256-layer-9.onnx ...): source [1, 1, N] -> embed [1, T, C], no manifest."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(ours))
    graph = model.graph
    dim = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    for node in graph.node:
        node.input[:] = ["wav_2d" if name == "wav" else name for name in node.input]
    graph.initializer.append(helper.make_tensor("squeeze_axes", TensorProto.INT64, [1], [1]))
    graph.node.insert(0, helper.make_node("Squeeze", ["source", "squeeze_axes"], ["wav_2d"]))
    graph.node.append(helper.make_node("Transpose", ["features"], ["embed"], perm=[0, 2, 1]))
    del graph.input[:], graph.output[:], model.metadata_props[:]
    graph.input.append(helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 1, "n"]))
    graph.output.append(helper.make_tensor_value_info("embed", TensorProto.FLOAT, [1, "t", dim]))
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target
