"""The torch port of RetinaFace MobileNet-0.25 (`retinaface-mnet-torch`) against the ONNX backend
it was built from: the weights read from the ONNX bytes, the raw outputs at any batch and size,
the faces on real frames of the sample within stated tolerances, the shared post-processing, and
how the backend is chosen and refused."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch
from retinaface.weights import WEIGHTS

from dfprep.config import DETECT_BACKENDS, DecodeConfig, DetectConfig, ExtractConfig
from dfprep.core.errors import ConfigError
from dfprep.decode import open_sampled
from dfprep.detect import BACKENDS, Face, get_detector
from dfprep.detectors.base import ort_session
from dfprep.detectors.onnx_graph import read_graph
from dfprep.detectors.retinaface_mnet import decode, decode_at, to_network_input
from dfprep.detectors.retinaface_net import load_network, module_path, state_dict_from_onnx
from dfprep.detectors.retinaface_net import to_network_input as torch_input
from dfprep.detectors.retinaface_torch import BatchedDetector, resolve_device, survivors

# Tolerances, torch (CPU) against ONNX Runtime on the same frames, in SOURCE pixels. Measured on
# this test's 79 frames (97 faces, 640x360 to 1920x1080): at most 4.8e-5 px on boxes, 5.0e-5 px
# on landmarks, 1.2e-7 on scores; on a 126-video copy of the sample (567 frames, 404 faces) the
# same, with scores up to 1.8e-7 (1.4e-6 at score_threshold 0.5). That is the float32 rounding of
# two convolution libraries (ORT's MLAS, torch's oneDNN); the bounds leave a 20x margin for other
# CPUs' kernels (AVX2 vs AVX-512) and are still far below a pixel.
BOX_TOL = 1e-3  # px
LANDMARK_TOL = 1e-3  # px
SCORE_TOL = 1e-5
# raw network outputs (normalised offsets and softmax scores)
RAW_TOL = 1e-4


@pytest.fixture(scope="module")
def net():
    return load_network()


@pytest.fixture(scope="module")
def session():
    return ort_session(WEIGHTS, 1)


@pytest.fixture(scope="module")
def sample_frames(sample_root) -> list[np.ndarray]:
    """The sampled frames (1 fps) of every original of the sample (its five frame sizes, one and
    two people) and of one fake per method."""
    originals = sorted((sample_root / "original_sequences").rglob("*.mp4"))
    fakes = {}
    for path in sorted((sample_root / "manipulated_sequences").rglob("*.mp4")):
        fakes.setdefault(path.relative_to(sample_root).parts[1], path)
    frames = []
    for path in [*originals, *fakes.values()]:
        with open_sampled(path, DecodeConfig()) as (_info, sampled):
            frames += [f.image for f in sampled]
    assert len({f.shape for f in frames}) >= 5
    return frames


def max_differences(a: list[list[Face]], b: list[list[Face]]) -> tuple[float, float, float]:
    """(box px, score, landmark px) over all faces; the face counts must agree frame by frame."""
    assert [len(f) for f in a] == [len(f) for f in b]
    pairs = [(x, y) for fa, fb in zip(a, b, strict=True) for x, y in zip(fa, fb, strict=True)]
    if not pairs:
        return 0.0, 0.0, 0.0
    box = max(float(np.abs(np.subtract(x.box, y.box)).max()) for x, y in pairs)
    score = max(abs(x.score - y.score) for x, y in pairs)
    lms = max(float(np.abs(np.subtract(x.landmarks, y.landmarks)).max()) for x, y in pairs)
    return box, score, lms


# --- the weights and the network ----------------------------------------------------------------


def test_the_graph_reader_agrees_with_the_onnx_package():
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load_from_string(WEIGHTS)
    graph = read_graph(WEIGHTS)
    assert [(n.op_type, n.name, n.inputs, n.outputs) for n in graph.nodes] == [
        (n.op_type, n.name, tuple(n.input), tuple(n.output)) for n in model.graph.node
    ]
    assert set(graph.initializers) == {t.name for t in model.graph.initializer}
    for tensor in model.graph.initializer:
        expected = numpy_helper.to_array(tensor)
        got = graph.initializers[tensor.name]
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_every_tensor_of_the_graph_lands_in_its_layer():
    graph = read_graph(WEIGHTS)
    state = state_dict_from_onnx(WEIGHTS)
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    # 59 Conv nodes, of which 3 are second calls of an SSH layer (the same weights via Identity)
    assert len(convs) == 59 and len(state) == 2 * (59 - 3)
    assert set(state) == set(load_network().state_dict())  # load_state_dict(strict=True) passed
    assert module_path("/fx/stage1/stage1.0/stage1.0.0/Conv_output_0") == "fx.stage1.0.0"
    assert module_path("/ssh1/conv5X5_1/conv5X5_1.0_1/Conv_output_0") == "ssh1.conv5X5_1.0"
    assert module_path("/class_head/class_head.2/Conv_output_0") == "class_head.class_head.2"
    used = {n.inputs[1] for n in convs} | {n.inputs[2] for n in convs}
    aliased = {n.outputs[0]: n.inputs[0] for n in graph.nodes if n.op_type == "Identity"}
    assert {aliased.get(u, u) for u in used} == set(graph.initializers)  # none left unread


@pytest.mark.parametrize("shape", [(1, 360, 640), (3, 480, 640), (2, 250, 333), (1, 33, 47)])
def test_the_network_gives_the_onnx_outputs_at_any_batch_and_size(net, session, shape):
    batch, height, width = shape
    rng = np.random.default_rng(height)
    frames = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    expected = session.run(["loc", "conf", "landmarks"], {"input": to_network_input(frames)})
    with torch.inference_mode():
        x = torch.from_numpy(frames)
        got = net(torch_input(x).contiguous())
    for e, g in zip(expected, got, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g.numpy(), e, atol=RAW_TOL, rtol=0)


# --- the faces on real frames ---------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.9, 0.5])
def test_same_faces_as_the_onnx_backend_on_the_sample(sample_frames, threshold):
    frames = sample_frames if threshold == 0.9 else sample_frames[::2]
    cfg = DetectConfig(score_threshold=threshold, batch_size=4)
    onnx_faces = get_detector(cfg).detect(frames)
    torch_detector = get_detector(dataclasses.replace(cfg, backend="retinaface-mnet-torch"))
    assert torch_detector.name == "retinaface-mnet-torch" and torch_detector.device.type == "cpu"
    torch_faces = torch_detector.detect(frames)
    assert sum(map(len, onnx_faces)) >= len(frames)  # faces everywhere, two in some
    box, score, lms = max_differences(onnx_faces, torch_faces)
    assert box <= BOX_TOL and lms <= LANDMARK_TOL and score <= SCORE_TOL, (box, score, lms)


def test_the_device_post_processing_is_the_onnx_backends(net, sample_frames):
    # survivors() selects on the device, decode_at() decodes: the numpy decode() of the same
    # outputs, to the bit, for a batch with faces, without faces and with many candidates.
    frames = np.stack([sample_frames[0], np.zeros_like(sample_frames[0]), sample_frames[1]])
    with torch.inference_mode():
        loc, conf, pts = net(torch_input(torch.from_numpy(frames)).contiguous())
    size = (frames.shape[2], frames.shape[1])
    for threshold in (0.9, 0.02):
        picked = survivors(loc, conf, pts, threshold)
        assert len(picked) == 3
        for j, candidates in enumerate(picked):
            expected = decode(loc[j].numpy(), conf[j].numpy(), pts[j].numpy(), size, threshold)
            for e, g in zip(expected, decode_at(*candidates, size), strict=True):
                np.testing.assert_array_equal(g, e)
        counts = [len(index) for index, *_ in picked]
        assert counts[0] > 0 and counts[2] > 0
        assert threshold < 0.5 or counts[1] == 0


def test_a_frames_faces_never_depend_on_its_batch_or_the_thread_count(sample_frames):
    # oneDNN picks other kernels (other float rounding) for other batch sizes and thread counts;
    # extract's detector process batches frames as they come, so the CPU runs one frame per
    # forward on one thread, to the bit the same faces whatever the batch (docs/gpu.md)
    frames = sample_frames[:10]
    one = BatchedDetector(DetectConfig(), "cpu", batch_size=1).detect(frames)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        many = BatchedDetector(DetectConfig(threads=2), "cpu", batch_size=7).detect(frames[::-1])
    finally:
        torch.set_num_threads(before)
    assert one == many[::-1] and sum(map(len, one)) >= len(frames)
    assert BatchedDetector(DetectConfig(), "cpu").detect([]) == []


# --- choosing the backend, and what is refused --------------------------------------------------


def test_the_backend_is_registered_and_the_existing_hash_is_kept():
    assert "retinaface-mnet-torch" in DETECT_BACKENDS and "retinaface-mnet-torch" in BACKENDS
    # No new field: configurations that existed before the torch backend hash as they did, so
    # their shards stay complete on resume (the hash of the defaults before and after this change;
    # detect.test_max_faces (issue 21) and detect.size_tie (issue 23) changed it from
    # 968b068bc909d96b on purpose: both change which faces are cropped).
    assert ExtractConfig().params_hash() == "2caa64c717aa8639"
    torch_cfg = ExtractConfig(detect=DetectConfig(backend="retinaface-mnet-torch"))
    assert (
        torch_cfg.params_hash() != ExtractConfig().params_hash()
    )  # its bytes may differ (tolerance)


def test_devices_and_options_are_checked():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"'gpu' is not auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match=r"'mps' is not auto"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"'cuda', but torch sees no CUDA device"):
            BatchedDetector(DetectConfig(), "cuda")
    with pytest.raises(ConfigError, match=r"'insightface' has no torch port"):
        BatchedDetector(DetectConfig(backend="insightface", model_path="x.onnx"), "cpu")
    with pytest.raises(ConfigError, match=r"precision: 'fp8'"):
        BatchedDetector(DetectConfig(), "cpu", precision="fp8")
    with pytest.raises(ConfigError, match=r"fp16 is for CUDA devices"):
        BatchedDetector(DetectConfig(), "cpu", precision="fp16")
    with pytest.raises(ConfigError, match=r"canvas: 'square'"):
        BatchedDetector(DetectConfig(), "cpu", canvas="square")
    with pytest.raises(ConfigError, match=r"canvas: \(16, 640\)"):
        BatchedDetector(DetectConfig(), "cpu", canvas=(16, 640))
    with pytest.raises(ConfigError, match=r"batch size: must be >= 1"):
        BatchedDetector(DetectConfig(), "cpu", batch_size=0)


def test_the_torch_detector_is_never_pickled_and_keeps_the_thread_count():
    detector = get_detector(DetectConfig(backend="retinaface-mnet-torch", threads=1))
    with pytest.raises(TypeError, match=r"get_detector"):
        pickle.dumps(detector)
    before = torch.get_num_threads()
    detector.detect([np.zeros((64, 64, 3), np.uint8)])
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=r"image 0 must be an RGB uint8"):
        detector.detect([np.zeros((64, 64), np.uint8)])


# --- the detector bench (figures are printed, never asserted) -------------------------------------


def test_the_detector_case_runs_tiny_on_the_cpu(tmp_path):
    from dfprep.bench import BenchConfig, detector, run_detector
    from dfprep.bench.config import PRECISIONS as BENCH_PRECISIONS
    from dfprep.config import Params
    from dfprep.detectors.retinaface_torch import PRECISIONS

    # the bench checks the GPU's faces against these tolerances, and offers torch's precisions
    assert (detector.BOX_TOL, detector.LANDMARK_TOL, detector.SCORE_TOL) == (
        BOX_TOL,
        LANDMARK_TOL,
        SCORE_TOL,
    )
    assert BENCH_PRECISIONS == PRECISIONS
    cfg = BenchConfig.for_case(
        "detector", device="cpu", size=(384, 216), batches=(1, 4), measure=0.1, threads=1
    )
    out = tmp_path / "detector.json"
    lines: list[str] = []
    res = run_detector(Params(), cfg, tmp_path, out, lines.append)
    assert json.loads(out.read_text())["device"] == "cpu" and res.frame_size == (384, 216)
    got = {(f.engine, f.what, f.batch) for f in res.figures}
    for batch in cfg.batches:
        assert {("onnxruntime-cpu", "detector", batch), ("torch-cpu", "detector", batch)} <= got
        assert ("torch-cpu", "network", batch) in got
    assert all(f.fps > 0 for f in res.figures) and len(lines) == 8
    agreement = res.agreement["fp32"]
    assert agreement["faces"] >= agreement["frames"] and agreement["within_test_tolerances"]
    assert res.batch_invariant == {"fp32": True} and res.target == {} and res.errors == {}
    with pytest.raises(ConfigError, match=r"bench.precision: tf32 and fp16 are for CUDA"):
        BenchConfig.for_case("detector", device="cpu", precision=("fp16",))
