"""Read fairseq's `conv_feature_layers` string without eval().

The string is a Python expression such as "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2" describing the
wave-to-frame convolution stack as (channels, kernel, stride) triples. Only list/tuple/int literals, `+` and
`*` are accepted; anything else (names, calls, attributes, huge repeats) raises ModelError.
"""
from __future__ import annotations

import ast
from typing import Any

from ..errors import ModelError

MAX_SPEC_LENGTH = 2000  # characters; a real spec is about 50
MAX_ITEMS = 1000  # elements any intermediate list/tuple may hold (guards "[(1,1,1)] * 10**9")

ConvLayerSpec = tuple[int, int, int]  # (out_channels, kernel_size, stride)


def _evaluate(node: ast.AST, text: str) -> Any:
    """Evaluate one node of the restricted grammar."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, text)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(elt, text) for elt in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _evaluate(node.left, text), _evaluate(node.right, text)
        if isinstance(node.op, ast.Add):
            if type(left) is not type(right) or isinstance(left, int):
                raise ModelError(f"conv_feature_layers '{text}': '+' only joins two lists.")
            result = left + right
        else:
            if isinstance(left, int) and isinstance(right, (list, tuple)):
                left, right = right, left
            if not (isinstance(left, (list, tuple)) and isinstance(right, int)):
                raise ModelError(f"conv_feature_layers '{text}': '*' only repeats a list by a whole number.")
            if right < 0 or len(left) * right > MAX_ITEMS:
                raise ModelError(f"conv_feature_layers '{text}': repeat count {right} is out of range.")
            result = left * right
        if len(result) > MAX_ITEMS:
            raise ModelError(f"conv_feature_layers '{text}' describes too many layers.")
        return result
    raise ModelError(
        f"conv_feature_layers '{text}' contains '{type(node).__name__}', but only whole numbers, lists, tuples, "
        "'+' and '*' are allowed."
    )


def parse_conv_layers(text: str) -> list[ConvLayerSpec]:
    """'[(512,10,5)] + [(512,3,2)] * 4' -> [(512, 10, 5), (512, 3, 2), ...] as (channels, kernel, stride)."""
    if not isinstance(text, str) or len(text) > MAX_SPEC_LENGTH:
        raise ModelError("conv_feature_layers must be a short text such as \"[(512,10,5)] + [(512,3,2)] * 4\".")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ModelError(f"conv_feature_layers '{text}' is not a valid expression: {err.msg}.") from None
    value = _evaluate(tree, text)
    if not isinstance(value, list) or not value:
        raise ModelError(f"conv_feature_layers '{text}' must be a non-empty list of (channels, kernel, stride).")
    layers: list[ConvLayerSpec] = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 3 and all(isinstance(v, int) and v > 0 for v in item)):
            raise ModelError(f"conv_feature_layers '{text}': every entry must be (channels, kernel, stride) > 0.")
        layers.append(item)
    return layers
