"""Fixtures for preprocessing contracts (the manifest's "preprocess" key), called by
scripts/make_fixtures.py.

image_identity_nchw.onnx, image_identity_nhwc.onnx
    Input "image" float, ["N", 3, 4, 5] (NCHW) or ["N", 4, 5, 3] (NHWC) -> Identity -> output
    "pixels" of the same shape: what a model receives after preprocessing comes back unchanged,
    so a test sees the preprocessed tensor itself. Height 4 and width 5 differ, so a transposed
    height and width cannot pass for the right layout.
preprocess_test.json
    "cases": one per contract (layout changed or unchanged, RGB or BGR, scale only, per-channel
    or single mean and std, UINT8, UINT16, INT16, INT64 and FP32 raw values), each with the
    model file, the input name, the "preprocess" entry for that input, the raw tensor
    (datatype, shape, flat data) and the expected model input: its shape and its float32 values
    as bit patterns, computed by preprocess_reference (NumPy, float32 throughout) and checked
    against an element-by-element computation of the same formula.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from fixture_common import check, make_model, save, session

SEED_PREPROCESS = 2468
IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS = 4, 5, 3
CHANNEL_AXIS = {"NHWC": 3, "NCHW": 1}
TRANSPOSE = {("NHWC", "NCHW"): (0, 3, 1, 2), ("NCHW", "NHWC"): (0, 2, 3, 1)}


def preprocess_reference(raw: np.ndarray, contract: dict) -> np.ndarray:
    """The model's input for `raw`, as the contract says registryd makes it: cast to float32,
    multiply by scale, subtract mean[c], divide by std[c] (each a float32 operation, channel c
    counted in the client's order), reverse the channels for BGR, then transpose to to_layout."""
    layout = contract["accepts"].get("layout")
    target = contract.get("to_layout", layout)
    axis = CHANNEL_AXIS.get(layout)
    x = raw.astype(np.float32)
    x = x * np.float32(contract.get("scale", 1.0))

    def per_channel(key: str, default: float) -> np.ndarray:
        values = np.asarray(contract.get(key, default), dtype=np.float32)
        if values.ndim == 0 or values.size == 1 or axis is None:
            return values.reshape(())
        shape = [1] * raw.ndim
        shape[axis] = values.size
        return values.reshape(shape)

    x = x - per_channel("mean", 0.0)
    x = x / per_channel("std", 1.0)
    if contract.get("channel_order") == "BGR":
        x = np.flip(x, axis=axis)
    if target != layout:
        x = x.transpose(TRANSPOSE[(layout, target)])
    return np.ascontiguousarray(x, dtype=np.float32)


def element_by_element(raw: np.ndarray, contract: dict) -> np.ndarray:
    """The same formula one element at a time with float32 scalars: a check on the vectorised
    reference's broadcasting, flips and transposes."""
    layout = contract["accepts"].get("layout")
    target = contract.get("to_layout", layout)
    expected = preprocess_reference(raw, contract)
    out = np.zeros(expected.shape, dtype=np.float32)
    means = np.atleast_1d(np.asarray(contract.get("mean", 0.0), dtype=np.float32))
    stds = np.atleast_1d(np.asarray(contract.get("std", 1.0), dtype=np.float32))
    scale = np.float32(contract.get("scale", 1.0))
    for index in np.ndindex(raw.shape):
        c = index[CHANNEL_AXIS[layout]] if layout in CHANNEL_AXIS else 0
        value = (np.float32(raw[index]) * scale - means[c % means.size]) / stds[c % stds.size]
        if layout in CHANNEL_AXIS:
            n, (h, w) = index[0], ((index[1], index[2]) if layout == "NHWC" else (index[2], index[3]))
            if contract.get("channel_order") == "BGR":
                c = IMAGE_CHANNELS - 1 - c
            index = (n, h, w, c) if target == "NHWC" else (n, c, h, w)
        out[index] = value
    return out


def image_identity(layout: str) -> onnx.ModelProto:
    dims = ["N", IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH] if layout == "NCHW" else ["N", IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["pixels"])],
        f"image_identity_{layout.lower()}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, dims)],
    )
    return make_model(graph)


def make_preprocess_fixtures(out: Path, notes: list[str]) -> None:
    models = {layout: image_identity(layout) for layout in ("NCHW", "NHWC")}
    for layout, model in models.items():
        save(model, out / f"image_identity_{layout.lower()}.onnx")

    rng = np.random.default_rng(SEED_PREPROCESS)
    nhwc = (2, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS)
    nchw = (2, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH)
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    # (name, model file, input, contract, raw values). Fractional FP32 raw values are multiples
    # of 1/8, which JSON carries exactly.
    cases = [
        ("nhwc_to_nchw_imagenet", "image_identity_nchw.onnx", "image",
         {"accepts": {"datatype": "UINT8", "layout": "NHWC"}, "to_layout": "NCHW",
          "scale": 0.0039215686, **imagenet, "channel_order": "RGB"},
         rng.integers(0, 256, nhwc).astype(np.uint8)),
        ("nhwc_to_nchw_bgr", "image_identity_nchw.onnx", "image",
         {"accepts": {"datatype": "UINT8", "layout": "NHWC"}, "to_layout": "NCHW",
          "scale": 0.0039215686, **imagenet, "channel_order": "BGR"},
         rng.integers(0, 256, nhwc).astype(np.uint8)),
        ("nchw_unchanged_scale_only", "image_identity_nchw.onnx", "image",
         {"accepts": {"datatype": "UINT8", "layout": "NCHW"}, "scale": 0.0039215686},
         rng.integers(0, 256, nchw).astype(np.uint8)),
        ("nchw_to_nhwc_bgr_uint16", "image_identity_nhwc.onnx", "image",
         {"accepts": {"datatype": "UINT16", "layout": "NCHW"}, "to_layout": "NHWC",
          "scale": 1 / 65535, "mean": 0.5, "std": 0.25, "channel_order": "BGR"},
         rng.integers(0, 65536, nchw).astype(np.uint16)),
        ("nhwc_unchanged_int16", "image_identity_nhwc.onnx", "image",
         {"accepts": {"datatype": "INT16", "layout": "NHWC"}, "mean": [-3, 0.1, 1000], "std": [7, 0.3, 2]},
         rng.integers(-32768, 32768, nhwc).astype(np.int16)),
        ("features_nf_uint8", "identity_float.onnx", "x",
         {"accepts": {"datatype": "UINT8", "layout": "NF"}, "scale": 0.0625, "mean": 0.5, "std": [0.25]},
         rng.integers(0, 17, (3, 4)).astype(np.uint8)),
        ("as_is_fp32", "identity_float.onnx", "x",
         {"accepts": {"datatype": "FP32"}, "scale": 2.5, "mean": [-1], "std": 3},
         (rng.integers(-800, 800, (2, 4)) / 8).astype(np.float32)),
        ("as_is_int64_rounding", "identity_float.onnx", "x",
         {"accepts": {"datatype": "INT64"}},
         np.array([[16777217, -16777219, 2**40 + 1, -(2**53) - 3], [0, 1, -1, 2**62 + 2**38 + 1]], dtype=np.int64)),
    ]
    written = []
    for name, model_file, input_name, contract, raw in cases:
        expected = preprocess_reference(raw, contract)
        check(np.array_equal(expected.view(np.uint32), element_by_element(raw, contract).view(np.uint32)),
              f"preprocess {name}: the reference and the element-by-element formula differ")
        model_bytes = (out / model_file).read_bytes()
        (echoed,) = session(model_bytes).run(None, {input_name: expected})
        check(np.array_equal(echoed.view(np.uint32), expected.view(np.uint32)), f"preprocess {name}: identity changed the values")
        written.append({
            "name": name,
            "model": model_file,
            "input": input_name,
            "preprocess": contract,
            "raw": {"datatype": contract["accepts"]["datatype"], "shape": list(raw.shape), "data": raw.ravel().tolist()},
            "expected": {"shape": list(expected.shape), "bits": expected.view(np.uint32).ravel().tolist()},
        })
    (out / "preprocess_test.json").write_text(json.dumps({"cases": written}, separators=(",", ":")) + "\n")
    notes.append(f"preprocess: {len(written)} contracts, NumPy reference equal to the element-by-element formula bit for bit")
