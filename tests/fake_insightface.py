"""A tiny ONNX model with the input/output signature of insightface's SCRFD/RetinaFace detectors.

It "detects" a bright square of side `face` (in detection pixels) on a dark image: the score at an
anchor is the sigmoid of the image brightness averaged over a face-sized window centred on that
anchor, and the box and landmark distances are constants, so the best anchor's box is the square.
It tests the wiring (preprocessing, strides, decoding, scaling back), not detection quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
GAIN, BIAS = 20.0, -10.0  # a fully bright window scores ~1, a window half dark ~0.5

# Landmarks as (x, y) offsets from the box centre, in half face sides: eyes high, mouth low.
LANDMARKS = np.array([[-0.4, -0.3], [0.4, -0.3], [0.0, 0.05], [-0.3, 0.45], [0.3, 0.45]])


def build_fake_detector(path: Path, face: int = 64, with_landmarks: bool = True) -> Path:
    """Write the model to path (9 outputs, or 6 without landmarks) and return path."""
    assert face % 2 == 0 and face // 2 >= max(STRIDES)
    half = face // 2
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["gray"], axes=[1], keepdims=1)]
    inits = [
        numpy_helper.from_array(np.array(GAIN, np.float32), "gain"),
        numpy_helper.from_array(np.array(BIAS, np.float32), "bias"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "column"),
        numpy_helper.from_array(np.zeros((1, 4), np.float32), "zeros4"),
        numpy_helper.from_array(np.zeros((1, 10), np.float32), "zeros10"),
    ]
    scores, boxes, points = [], [], []
    for s in STRIDES:
        # Window [i*s - half, i*s + half) for output i: centred on insightface's anchor at i*s.
        nodes += [
            helper.make_node(
                "AveragePool",
                ["gray"],
                [f"pool{s}"],
                kernel_shape=[face, face],
                strides=[s, s],
                pads=[half, half, half - s, half - s],
                count_include_pad=0,
            ),
            helper.make_node("Mul", [f"pool{s}", "gain"], [f"scaled{s}"]),
            helper.make_node("Add", [f"scaled{s}", "bias"], [f"logit{s}"]),
            helper.make_node("Sigmoid", [f"logit{s}"], [f"prob{s}"]),
            helper.make_node("Concat", [f"prob{s}", f"prob{s}"], [f"anchors{s}"], axis=1),
            helper.make_node("Transpose", [f"anchors{s}"], [f"nhwc{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"nhwc{s}", "column"], [f"score_{s}"]),
        ]
        # Distances are in strides: insightface multiplies them by the stride.
        inits.append(numpy_helper.from_array(np.full((1, 4), half / s, np.float32), f"dist{s}"))
        nodes += [
            helper.make_node("Mul", [f"score_{s}", "zeros4"], [f"zero_box{s}"]),
            helper.make_node("Add", [f"zero_box{s}", f"dist{s}"], [f"bbox_{s}"]),
        ]
        scores.append(f"score_{s}")
        boxes.append(f"bbox_{s}")
        if with_landmarks:
            offsets = (LANDMARKS * half / s).reshape(1, 10).astype(np.float32)
            inits.append(numpy_helper.from_array(offsets, f"kps_offsets{s}"))
            nodes += [
                helper.make_node("Mul", [f"score_{s}", "zeros10"], [f"zero_kps{s}"]),
                helper.make_node("Add", [f"zero_kps{s}", f"kps_offsets{s}"], [f"kps_{s}"]),
            ]
            points.append(f"kps_{s}")

    def output(name: str, width: int) -> onnx.ValueInfoProto:
        rows = f"anchors_{name.rsplit('_', 1)[1]}"  # one symbolic length per stride
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [rows, width])

    graph = helper.make_graph(
        nodes,
        "fake_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [output(n, 1) for n in scores]
        + [output(n, 4) for n in boxes]
        + [output(n, 10) for n in points],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def bright_square(width: int, height: int, x: int, y: int, side: int) -> np.ndarray:
    """A black RGB frame with a white side x side square whose top-left corner is (x, y)."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[y : y + side, x : x + side] = 255
    return frame
