"""The conv_feature_layers reader evaluates only literals, '+' and '*'."""
from __future__ import annotations

import pytest

from svc_core.encoders.conv_spec import parse_conv_layers
from svc_core.errors import ModelError


def test_standard_stack() -> None:
    layers = parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
    assert layers == [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


def test_repeat_on_the_left_and_plain_list() -> None:
    assert parse_conv_layers("2 * [(8, 3, 1)]") == [(8, 3, 1), (8, 3, 1)]
    assert parse_conv_layers("[(4,2,2), (4,2,2)]") == [(4, 2, 2), (4, 2, 2)]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "[(512,10,5)] + x",
        "[(512,10,5)] * 10**9",
        "[(512,10,5)] * 100000",
        "[(512.0,10,5)]",
        "[(512,10)]",
        "[(512,10,5)] - [(1,1,1)]",
        "[]",
        "[(512,10,5)",
        "1 + 2",
    ],
)
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(ModelError):
        parse_conv_layers(text)
