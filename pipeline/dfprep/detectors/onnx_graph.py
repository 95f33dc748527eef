"""The nodes and float32 initializers of an ONNX model, read straight from its protobuf bytes.

The torch port of RetinaFace (`dfprep.detectors.retinaface_torch`) needs only which tensor feeds
which Conv, and the tensors. Reading them here keeps the `onnx` package (and its protobuf and
ml_dtypes) off the run-time dependencies, which matters on a GPU host where every package travels
as a wheel. Field numbers are those of onnx/onnx.proto (stable since IR version 3); anything this
reader does not handle (external data, non-float32 initializers) is refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# onnx.proto field numbers
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
NODE_INPUT, NODE_OUTPUT, NODE_NAME, NODE_OP_TYPE = 1, 2, 3, 4
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA = 1, 2, 4, 8, 9
TENSOR_DATA_LOCATION = 14
FLOAT32 = 1  # TensorProto.DataType.FLOAT
VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # protobuf wire types


@dataclass(frozen=True)
class Node:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    initializers: dict[str, np.ndarray]


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("ONNX model: truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one message: an int for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, i = _varint(buf, i)
        elif wire in (FIXED64, FIXED32):
            n = 8 if wire == FIXED64 else 4
            value, i = buf[i : i + n], i + n
        elif wire == LEN:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        else:
            raise ValueError(f"ONNX model: unsupported protobuf wire type {wire}")
        if i > len(buf):
            raise ValueError("ONNX model: truncated message")
        yield number, wire, value


def _text(value: memoryview) -> str:
    return bytes(value).decode()


def _node(buf: memoryview) -> Node:
    op_type = name = ""
    inputs, outputs = [], []
    for number, _, value in _fields(buf):
        if number == NODE_INPUT:
            inputs.append(_text(value))
        elif number == NODE_OUTPUT:
            outputs.append(_text(value))
        elif number == NODE_NAME:
            name = _text(value)
        elif number == NODE_OP_TYPE:
            op_type = _text(value)
    return Node(op_type, name, tuple(inputs), tuple(outputs))


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    name, dims, dtype, raw, floats, external = "", [], None, None, [], False
    for number, wire, value in _fields(buf):
        if number == TENSOR_DIMS:
            if wire == LEN:  # packed
                j = 0
                while j < len(value):
                    d, j = _varint(value, j)
                    dims.append(d)
            else:
                dims.append(value)
        elif number == TENSOR_DATA_TYPE:
            dtype = value
        elif number == TENSOR_NAME:
            name = _text(value)
        elif number == TENSOR_RAW_DATA:
            raw = bytes(value)
        elif number == TENSOR_FLOAT_DATA:
            floats.append(np.frombuffer(value, "<f4"))  # packed or one by one
        elif number == TENSOR_DATA_LOCATION and value == 1:
            external = True
    if dtype != FLOAT32 or external:
        raise ValueError(f"ONNX initializer {name!r}: only float32 data held in the model is read")
    data = (
        np.frombuffer(raw, "<f4")
        if raw is not None
        else np.concatenate([np.zeros(0, np.float32), *floats])
    )
    return name, data.astype(np.float32).reshape(dims)


def read_graph(model: bytes) -> Graph:
    """The main graph's nodes (in order) and float32 initializers of a serialized ModelProto."""
    graph = None
    for number, wire, value in _fields(memoryview(model)):
        if number == MODEL_GRAPH and wire == LEN:
            graph = value
    if graph is None:
        raise ValueError("ONNX model: no graph")
    nodes, initializers = [], {}
    for number, wire, value in _fields(graph):
        if number == GRAPH_NODE and wire == LEN:
            nodes.append(_node(value))
        elif number == GRAPH_INITIALIZER and wire == LEN:
            name, array = _tensor(value)
            initializers[name] = array
    return Graph(tuple(nodes), initializers)
