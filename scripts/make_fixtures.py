#!/usr/bin/env python3
"""Generate the ONNX test fixtures used by registryd's Swift test suite.

Run from the repository root:

    .venv/bin/python scripts/make_fixtures.py [--out DIR]

The default output directory is Tests/Fixtures/models. The output is deterministic: every
random source is seeded and everything that a converter would name at random is renamed, so
running the script twice gives byte-identical files. After writing, every fixture is checked
with the Python onnxruntime package, and the script exits non-zero if a check fails.

All models use IR version 8. The hand-built ones import ONNX opset 17; the scikit-learn ones
are converted with target opset 17, and skl2onnx records the lowest opset their operators need
(17 for digits_logreg, 16 for digits_mlp, plus ai.onnx.ml 1). That is old enough for any recent
ONNX Runtime (1.14 onwards) and new enough for Identity on bfloat16 (Identity-16).

Fixtures
--------
identity_<type>.onnx
    One per ONNX tensor element type (float, double, float16, bfloat16, int8, int16, int32,
    int64, uint8, uint16, uint32, uint64, bool, string): input "x" -> Identity -> output "y",
    both of shape ["N", 4]. Used to test that every element type survives registryd's tensor
    encoding and decoding bit for bit.
symbolic_batch.onnx
    Input "x" float ["batch", 4], output "y" = x + x. Tests symbolic dimension reporting and
    running with different batch sizes.
multi_io.onnx
    Inputs "a" float ["N", 3], "b" float ["N", 3], "c" int64 ["N"]; outputs "sum" = a + b,
    "product" = a * b, "c_out" = c. Carries model metadata (producer, version, doc string,
    custom properties) so that metadata extraction can be tested; the other hand-built models
    carry none.
digits_logreg.onnx, digits_mlp.onnx
    scikit-learn LogisticRegression and MLPClassifier trained on the training part of the
    bundled digits data set. Input "input" float [N, 64]; outputs "label" int64 [N] and
    "probabilities" float [N, 10]. Unlike in the hand-built models, N is an unnamed dynamic
    dimension here (neither dim_value nor dim_param), as skl2onnx writes it. The two models
    disagree on a few test rows, which lets tests tell which model served a request.
digits_test.json
    The held-out test split (features, true labels) with both models' scikit-learn
    predictions, accuracies and the number of rows on which they agree.
digits_faulty.onnx
    digits_logreg plus a side branch that looks feature 0 up in a 17-entry table. For valid
    digit inputs (trunc(feature 0) in 0..16) it gives exactly digits_logreg's outputs; for any
    other value of feature 0 (e.g. 100) onnxruntime fails at Run time, not at load. Used to
    test how registryd reports inference errors.
invalid.onnx
    256 bytes of text that is not a protobuf; onnxruntime refuses to load it.
truncated.onnx
    The first half of digits_logreg.onnx; onnxruntime refuses to load it.
cnn_small.onnx
    A tiny ResNet-style CNN: input "input" float [N, 3, 224, 224], output "logits" float
    [N, 10]. Strided Conv+Relu layers, one residual block, GlobalAveragePool, Flatten, Gemm,
    with seeded random weights. A real-architecture test with image-sized tensors that stays
    small on disk.
skin_heads.onnx, skin_heads_manifest.json, skin_heads_test.json
    A model whose one output holds three heads, as a skin-and-hair service has them: input
    "input" float [N, 6] -> Gemm -> "logits" float [N, 14] = 5 skin types, 4 hair types and 5
    conditions. Weights are multiples of 1/64 in [-1, 1] and test inputs integers 0..16, so
    every logit is exact in float32 whatever the order of the sums (the same on any CPU). The
    manifest splits "logits" into the heads skin_type (softmax), hair_type (softmax) and
    condition (raw scores), each with class names. The bias ties two classes of each head, so
    the all-zero test row has ties. skin_heads_test.json holds the test inputs, the logits, each
    head's reference values (softmax: the maximum subtracted, each exponential computed in
    double and rounded to float32, the sum taken in float32 in index order, as registryd does)
    and each head's top 3 classes formatted as Triton formats classifications ("%f" score,
    index, label; equal scores in index order).
image_identity_nchw.onnx, image_identity_nhwc.onnx, preprocess_test.json
    Preprocessing contracts (the manifest's "preprocess"): identity models over small images
    and, per contract, raw inputs with the model input a NumPy reference makes of them. Made by
    fixtures_preprocess.py, whose docstring has the details.
digits_router.onnx, digits_router_b.onnx, digits_group0.onnx .. digits_group2.onnx, their
digits_*_manifest.json, digits_pipeline_reference.json
    A pipeline's parts: two routers that assign a digits image to a group (0-3, 4-6, 7-9) and
    a classifier per group, all taking raw UINT8 pixels through a preprocessing contract, with
    the composed pipeline's reference answers for the test split. Made by
    fixtures_digits_pipeline.py, whose docstring has the details.

Helpers shared with those modules (the checks, the digits split) are in fixture_common.py.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from fixture_common import (
    IR_VERSION, OPSET, ORT_ERRORS, CheckFailed, check, convert_classifier, digits_split,
    make_model, save, session,
)
from fixtures_digits_pipeline import make_digits_pipeline_fixtures
from fixtures_preprocess import make_preprocess_fixtures

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "models"

# Element types for the identity fixtures: file-name suffix -> (ONNX type, numpy dtype used to
# hold the raw bits). bfloat16 has no numpy dtype that onnxruntime accepts, so its bits travel
# as uint16; strings are handled separately.
IDENTITY_TYPES: dict[str, tuple[int, type | None]] = {
    "float": (TensorProto.FLOAT, np.float32),
    "double": (TensorProto.DOUBLE, np.float64),
    "float16": (TensorProto.FLOAT16, np.float16),
    "bfloat16": (TensorProto.BFLOAT16, np.uint16),
    "int8": (TensorProto.INT8, np.int8),
    "int16": (TensorProto.INT16, np.int16),
    "int32": (TensorProto.INT32, np.int32),
    "int64": (TensorProto.INT64, np.int64),
    "uint8": (TensorProto.UINT8, np.uint8),
    "uint16": (TensorProto.UINT16, np.uint16),
    "uint32": (TensorProto.UINT32, np.uint32),
    "uint64": (TensorProto.UINT64, np.uint64),
    "bool": (TensorProto.BOOL, np.bool_),
    "string": (TensorProto.STRING, None),
}

# Seeds: one per purpose, so that adding a fixture does not change the others (the split's is
# in fixture_common.py).
SEED_MLP = 0
SEED_CNN = 1234
SEED_HEADS = 4321
SEED_CHECKS = 99  # only for verification inputs; never written to disk

FAULTY_TABLE_LEN = 17  # digit features take the values 0..16


# --------------------------------------------------------------------------------------------
# 1. Identity models, one per element type


def identity_model(elem_type: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", elem_type, ["N", 4])],
        [helper.make_tensor_value_info("y", elem_type, ["N", 4])],
    )
    return make_model(graph)


def random_identity_input(rng: np.random.Generator, name: str, dtype, rows: int):
    count = rows * 4
    if name == "string":
        # Empty, ASCII, multi-byte UTF-8 and embedded-space strings.
        pool = ["", "a", "hello world", "ünïcødé", "日本語", "🙂", "x" * 100, "tab\there"]
        return np.array([pool[i] for i in rng.integers(0, len(pool), count)], dtype=object).reshape(rows, 4)
    if name == "bool":
        return rng.integers(0, 2, count).astype(np.bool_).reshape(rows, 4)
    # Random bit patterns, so floats include NaN payloads, infinities, subnormals and -0.0:
    # an Identity must hand every one of them back unchanged.
    raw = rng.bytes(count * np.dtype(dtype).itemsize)
    return np.frombuffer(raw, dtype=dtype).reshape(rows, 4).copy()


def check_identity(name: str, elem_type: int, dtype, model: onnx.ModelProto, rng) -> None:
    sess = session(model)
    for rows in (1, 5):
        x = random_identity_input(rng, name, dtype, rows)
        if name == "bfloat16":
            # onnxruntime's Python API has no numpy type for bfloat16: pass and read raw bits.
            value = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(x, elem_type)
            out = sess.run_with_ort_values(["y"], {"x": value})[0]
            check(out.shape() == [rows, 4], f"identity_{name}: shape {out.shape()}")
            got = ctypes.string_at(out.data_ptr(), out.tensor_size_in_bytes())
            check(got == x.tobytes(), f"identity_{name}: bits changed")
        elif name == "string":
            (y,) = sess.run(["y"], {"x": x})
            check(y.shape == x.shape and y.tolist() == x.tolist(), f"identity_{name}: values changed")
        else:
            (y,) = sess.run(["y"], {"x": x})
            check(y.dtype == x.dtype and y.shape == x.shape, f"identity_{name}: {y.dtype} {y.shape}")
            check(y.tobytes() == x.tobytes(), f"identity_{name}: bits changed")


def make_identity_fixtures(out: Path, rng, notes: list[str]) -> None:
    unsupported = []
    for name, (elem_type, dtype) in IDENTITY_TYPES.items():
        model = identity_model(elem_type)
        save(model, out / f"identity_{name}.onnx")
        try:
            check_identity(name, elem_type, dtype, model, rng)
        except (CheckFailed, *ORT_ERRORS) as err:
            # Keep the file (the Swift side may want to test the failure) but say so loudly.
            unsupported.append(f"{name}: {err}")
    if unsupported:
        notes.extend(f"identity type NOT working in onnxruntime: {u}" for u in unsupported)
    else:
        notes.append(f"identity: all {len(IDENTITY_TYPES)} element types round-trip bit for bit")


# --------------------------------------------------------------------------------------------
# 2. Symbolic batch, 3. multiple inputs and outputs with metadata


def make_symbolic_batch(out: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "symbolic_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = make_model(graph)
    save(model, out / "symbolic_batch.onnx")

    sess = session(model)
    for rows in (1, 3, 17):
        x = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4) - 5.5
        (y,) = sess.run(None, {"x": x})
        check(np.array_equal(y, x + x), "symbolic_batch: y != x + x")


def make_multi_io(out: Path) -> None:
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Mul", ["a", "b"], ["product"]),
            helper.make_node("Identity", ["c"], ["c_out"]),
        ],
        "multi_io",
        [
            helper.make_tensor_value_info("a", f, ["N", 3]),
            helper.make_tensor_value_info("b", f, ["N", 3]),
            helper.make_tensor_value_info("c", i64, ["N"]),
        ],
        [
            helper.make_tensor_value_info("sum", f, ["N", 3]),
            helper.make_tensor_value_info("product", f, ["N", 3]),
            helper.make_tensor_value_info("c_out", i64, ["N"]),
        ],
    )
    model = make_model(
        graph,
        producer_name="registryd-fixtures",
        producer_version="1.0",
        model_version=7,
        doc_string="multi input/output fixture",
    )
    helper.set_model_props(model, {"author": "registryd", "purpose": "tests"})
    save(model, out / "multi_io.onnx")

    sess = session(model)
    meta = sess.get_modelmeta()
    check(meta.producer_name == "registryd-fixtures" and meta.version == 7, "multi_io: metadata")
    check(meta.custom_metadata_map == {"author": "registryd", "purpose": "tests"}, "multi_io: props")
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    b = np.array([[0.5, -1, 2], [3, 0, -2]], dtype=np.float32)
    c = np.array([7, -9_000_000_000], dtype=np.int64)
    s, p, c_out = sess.run(["sum", "product", "c_out"], {"a": a, "b": b, "c": c})
    check(np.array_equal(s, a + b) and np.array_equal(p, a * b), "multi_io: sum/product")
    check(np.array_equal(c_out, c), "multi_io: c_out")


# --------------------------------------------------------------------------------------------
# 4.-6. Digits classifiers, their test data, and the faulty variant


def faulty_model(logreg: onnx.ModelProto) -> onnx.ModelProto:
    """Add a range check on feature 0 that fails inside onnxruntime instead of returning.

    idx = int64(input[:, 0]) is used as an index into a 17-entry table of zeros twice: as is,
    and shifted by -17. Gather accepts indices in [-17, 16], so the first lookup rejects
    idx > 16 and the second (valid for idx - 17 in [-17, 16], i.e. idx in [0, 33]) rejects
    idx < 0; together exactly 0..16 pass. The second index adds the first lookup's result
    (zero), so the first lookup always runs first and a too-large feature is reported with its
    own value ("idx=100 must be within the inclusive range [-17,16]"). The looked-up zeros are
    added to both outputs, so valid inputs give bit-identical results and both outputs depend
    on the check (whichever output a caller asks for, the branch runs).
    """
    model = onnx.ModelProto()
    model.CopyFrom(logreg)
    graph = model.graph
    graph.name = "digits_faulty"

    # Rename the original outputs so that the final outputs can be built on top of them.
    renames = {"label": "label_raw", "probabilities": "probabilities_raw"}
    for node in graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]

    graph.initializer.extend([
        numpy_helper.from_array(np.zeros(FAULTY_TABLE_LEN, dtype=np.float32), "fault_table"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "fault_feature"),
        numpy_helper.from_array(np.array(FAULTY_TABLE_LEN, dtype=np.int64), "fault_len"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "fault_axes"),
    ])
    graph.node.extend([
        helper.make_node("Gather", ["input", "fault_feature"], ["fault_x0"], axis=1),
        helper.make_node("Cast", ["fault_x0"], ["fault_idx"], to=TensorProto.INT64),
        helper.make_node("Gather", ["fault_table", "fault_idx"], ["fault_hi"], axis=0),
        helper.make_node("Cast", ["fault_hi"], ["fault_hi_int"], to=TensorProto.INT64),
        helper.make_node("Add", ["fault_idx", "fault_hi_int"], ["fault_idx_after_hi"]),
        helper.make_node("Sub", ["fault_idx_after_hi", "fault_len"], ["fault_idx_shifted"]),
        helper.make_node("Gather", ["fault_table", "fault_idx_shifted"], ["fault_lo"], axis=0),
        helper.make_node("Add", ["fault_hi", "fault_lo"], ["fault_zero"]),
        helper.make_node("Unsqueeze", ["fault_zero", "fault_axes"], ["fault_zero_col"]),
        helper.make_node("Add", ["probabilities_raw", "fault_zero_col"], ["probabilities"]),
        helper.make_node("Cast", ["fault_zero"], ["fault_zero_int"], to=TensorProto.INT64),
        helper.make_node("Add", ["label_raw", "fault_zero_int"], ["label"]),
    ])
    onnx.checker.check_model(model, full_check=True)
    return model


def make_digits_fixtures(out: Path, notes: list[str]) -> None:
    X_train, X_test, y_train, y_test = digits_split()
    # One BLAS thread: multi-threaded reductions can change float rounding with the core count,
    # and with it the trained weights.
    with threadpool_limits(limits=1):
        logreg = LogisticRegression(max_iter=5000).fit(X_train, y_train)
        mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=SEED_MLP)
        mlp.fit(X_train, y_train)
    check(logreg.n_iter_.max() < logreg.max_iter, "logreg did not converge")
    check(mlp.n_iter_ < mlp.max_iter, "mlp did not converge")

    logreg_pred = logreg.predict(X_test)
    mlp_pred = mlp.predict(X_test)
    agreement = int(np.sum(logreg_pred == mlp_pred))
    check(0 < len(y_test) - agreement, "logreg and mlp agree everywhere; tests need a difference")

    X_test32 = X_test.astype(np.float32)
    onnx_models = {}
    for name, clf, pred in (("logreg", logreg, logreg_pred), ("mlp", mlp, mlp_pred)):
        onx = convert_classifier(clf, f"digits_{name}")
        save(onx, out / f"digits_{name}.onnx")
        onnx_models[name] = onx
        label, proba = session(onx).run(["label", "probabilities"], {"input": X_test32})
        check(label.dtype == np.int64 and proba.shape == (len(y_test), 10), f"digits_{name}: types")
        mismatches = np.flatnonzero(label != pred)
        if len(mismatches):
            # Float32 ONNX vs float64 scikit-learn can split near-ties differently.
            notes.append(f"digits_{name}: ONNX label != sklearn predict at test rows {mismatches.tolist()}")
        else:
            notes.append(f"digits_{name}: ONNX label == sklearn predict on all {len(y_test)} test rows")

    integral = X_test.astype(np.int64)
    check(np.array_equal(integral, X_test) and integral.min() >= 0 and integral.max() <= 16,
          "digits features are not integers in 0..16")
    test_data = {
        "features": integral.tolist(),
        "labels": y_test.astype(int).tolist(),
        "logreg_predictions": logreg_pred.astype(int).tolist(),
        "mlp_predictions": mlp_pred.astype(int).tolist(),
        "logreg_accuracy": float(np.mean(logreg_pred == y_test)),
        "mlp_accuracy": float(np.mean(mlp_pred == y_test)),
        "agreement": agreement,
    }
    (out / "digits_test.json").write_text(json.dumps(test_data, separators=(",", ":")) + "\n")
    notes.append(
        f"digits: {len(y_test)} test rows, logreg accuracy {test_data['logreg_accuracy']:.4f}, "
        f"mlp accuracy {test_data['mlp_accuracy']:.4f}, agreement {agreement}/{len(y_test)}"
    )

    faulty = faulty_model(onnx_models["logreg"])
    save(faulty, out / "digits_faulty.onnx")
    notes.append(check_faulty(faulty, onnx_models["logreg"], X_test32))


def check_faulty(faulty: onnx.ModelProto, logreg: onnx.ModelProto, X: np.ndarray) -> str:
    """digits_faulty must load, match logreg on valid rows and fail in Run on invalid ones."""
    good_sess, bad_sess = session(logreg), session(faulty, quiet=True)
    fetches = (["label", "probabilities"], ["label"], ["probabilities"])

    # Pixel 0 is 0 in every digits image, so also try every other valid value of feature 0.
    valid = [X] + [np.where(np.arange(64) == 0, float(v), X[:20]).astype(np.float32) for v in range(17)]
    for x in valid:
        for fetch in fetches:
            want = good_sess.run(fetch, {"input": x})
            got = bad_sess.run(fetch, {"input": x})
            check(all(np.array_equal(w, g) for w, g in zip(want, got)), "digits_faulty: outputs differ")

    # NaN is left out: its conversion to int64 differs between CPU architectures.
    first_error = ""
    for bad_value in (100.0, 17.0, -1.0, -17.0):
        x = X[:3].copy()
        x[1, 0] = bad_value
        for fetch in fetches:
            try:
                bad_sess.run(fetch, {"input": x})
            except ORT_ERRORS as err:
                first_error = first_error or str(err).splitlines()[0]
                continue  # wanted: an error from Run, not an answer
            raise CheckFailed(f"digits_faulty: feature0={bad_value} fetching {fetch} did not fail")
    return f"digits_faulty: loads; valid rows match logreg; feature0=100 fails at Run: {first_error}"


# --------------------------------------------------------------------------------------------
# 7. Files that are not loadable models


def make_broken_fixtures(out: Path) -> None:
    text = b"this is not an onnx model\n"
    garbage = (text * (256 // len(text) + 1))[:256]
    (out / "invalid.onnx").write_bytes(garbage)

    whole = (out / "digits_logreg.onnx").read_bytes()
    (out / "truncated.onnx").write_bytes(whole[: len(whole) // 2])

    for name in ("invalid.onnx", "truncated.onnx"):
        # Both ways registryd might hand a model over: as bytes and as a file path.
        for source in ((out / name).read_bytes(), str(out / name)):
            try:
                ort.InferenceSession(source, providers=["CPUExecutionProvider"])
            except ORT_ERRORS:
                continue
            raise CheckFailed(f"{name}: onnxruntime loaded it")


# --------------------------------------------------------------------------------------------
# 8. Small ResNet-style CNN


def make_cnn(out: Path) -> None:
    rng = np.random.default_rng(SEED_CNN)
    initializers = []

    def conv(name: str, inp: str, c_in: int, c_out: int, stride: int) -> onnx.NodeProto:
        # He-style scaling keeps activations from vanishing or exploding through the layers.
        w = rng.normal(0.0, np.sqrt(2.0 / (c_in * 9)), (c_out, c_in, 3, 3)).astype(np.float32)
        b = rng.normal(0.0, 0.01, c_out).astype(np.float32)
        initializers.append(numpy_helper.from_array(w, f"{name}_w"))
        initializers.append(numpy_helper.from_array(b, f"{name}_b"))
        return helper.make_node("Conv", [inp, f"{name}_w", f"{name}_b"], [name],
                                kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride])

    def relu(inp: str) -> onnx.NodeProto:
        return helper.make_node("Relu", [inp], [f"{inp}_relu"])

    nodes = [
        conv("stem", "input", 3, 8, 2), relu("stem"),                    # 224 -> 112
        conv("down1", "stem_relu", 8, 16, 2), relu("down1"),             # 112 -> 56
        conv("res_a", "down1_relu", 16, 16, 1), relu("res_a"),           # residual block
        conv("res_b", "res_a_relu", 16, 16, 1),
        helper.make_node("Add", ["res_b", "down1_relu"], ["res_sum"]),
        relu("res_sum"),
        conv("down2", "res_sum_relu", 16, 16, 2), relu("down2"),         # 56 -> 28
        helper.make_node("GlobalAveragePool", ["down2_relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    initializers.append(numpy_helper.from_array(
        rng.normal(0.0, np.sqrt(1.0 / 16), (10, 16)).astype(np.float32), "fc_w"))
    initializers.append(numpy_helper.from_array(rng.normal(0.0, 0.01, 10).astype(np.float32), "fc_b"))

    graph = helper.make_graph(
        nodes,
        "cnn_small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=initializers,
    )
    model = make_model(graph)
    save(model, out / "cnn_small.onnx")

    sess = session(model)
    x = np.random.default_rng(SEED_CHECKS).random((2, 3, 224, 224), dtype=np.float32)
    (logits,) = sess.run(["logits"], {"input": x})
    check(logits.shape == (2, 10) and np.all(np.isfinite(logits)), f"cnn_small: {logits.shape}")
    check(not np.allclose(logits[0], logits[1]) and np.ptp(logits) > 1e-3, "cnn_small: degenerate")
    (single,) = sess.run(["logits"], {"input": x[:1]})
    check(np.allclose(single[0], logits[0], atol=1e-5), "cnn_small: batch changes results")


# --------------------------------------------------------------------------------------------
# 9. One output, three heads


HEADS = [
    {"name": "skin_type", "size": 5, "softmax": True,
     "labels": ["dry", "normal", "oily", "combination", "sensitive"]},
    {"name": "hair_type", "size": 4, "softmax": True,
     "labels": ["straight", "wavy", "curly", "coily"]},
    {"name": "condition", "size": 5, "softmax": False,
     "labels": ["none", "acne", "eczema", "rosacea", "psoriasis"]},
]
HEADS_TOP = 3


def head_reference(logits: np.ndarray, softmax: bool) -> np.ndarray:
    """A head's values as registryd computes them, operation by operation in float32."""
    if not softmax:
        return logits.astype(np.float32)
    rows = []
    for row in logits.astype(np.float32):
        shifted = row - row.max()  # exact here: logits are multiples of 1/64
        exps = [np.float32(math.exp(float(v))) for v in shifted]
        total = np.float32(0)
        for e in exps:
            total = np.float32(total + e)
        rows.append([np.float32(e / total) for e in exps])
    return np.array(rows, dtype=np.float32)


def triton_classes(scores: np.ndarray, k: int, labels: list[str]) -> list[list[str]]:
    """Triton's classification text per row: "%f" score, index, label; ties in index order."""
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[: min(k, len(row))]
        out.append([f"{'%f' % float(row[i])}:{i}" + (f":{labels[i]}" if i < len(labels) and labels[i] else "")
                    for i in order])
    return out


def make_heads(out: Path, notes: list[str]) -> None:
    rng = np.random.default_rng(SEED_HEADS)
    width = sum(h["size"] for h in HEADS)
    weights = (rng.integers(-64, 65, (width, 6)) / 64).astype(np.float32)
    bias = (rng.integers(-64, 65, width) / 64).astype(np.float32)
    # Ties for the all-zero row: the first two classes of each head share a bias.
    start = 0
    for head in HEADS:
        bias[start + 1] = bias[start]
        start += head["size"]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "weights", "bias"], ["logits"], transB=1)],
        "skin_heads",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", width])],
        initializer=[numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = make_model(graph)
    save(model, out / "skin_heads.onnx")

    manifest = {
        "description": "skin type, hair type and condition from one logits vector (registryd test fixture)",
        "heads": {"logits": HEADS},
    }
    (out / "skin_heads_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    inputs = rng.integers(0, 17, (7, 6)).astype(np.float32)
    inputs = np.vstack([np.zeros((1, 6), dtype=np.float32), inputs])
    (logits,) = session(model).run(["logits"], {"input": inputs})
    exact = inputs.astype(np.float64) @ weights.astype(np.float64).T + bias.astype(np.float64)
    check(np.array_equal(logits.astype(np.float64), exact), "skin_heads: logits are not exact")

    heads, top = {}, {}
    start = 0
    for head in HEADS:
        values = head_reference(logits[:, start:start + head["size"]], head["softmax"])
        heads[head["name"]] = values.tolist()
        top[head["name"]] = triton_classes(values, HEADS_TOP, head["labels"])
        start += head["size"]
    check(all(heads[h["name"]][0][0] == heads[h["name"]][0][1] for h in HEADS), "skin_heads: the all-zero row has no ties")
    test_data = {
        "inputs": inputs.astype(int).tolist(),
        "logits": logits.tolist(),
        "heads": heads,
        "top": HEADS_TOP,
        "classes": top,
    }
    (out / "skin_heads_test.json").write_text(json.dumps(test_data, separators=(",", ":")) + "\n")
    notes.append(f"skin_heads: {len(inputs)} test rows, logits exact; heads {', '.join(h['name'] for h in HEADS)}")


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    notes: list[str] = []
    try:
        make_identity_fixtures(out, np.random.default_rng(SEED_CHECKS), notes)
        make_symbolic_batch(out)
        make_multi_io(out)
        make_digits_fixtures(out, notes)
        make_broken_fixtures(out)  # needs digits_logreg.onnx
        make_cnn(out)
        make_heads(out, notes)
        make_preprocess_fixtures(out, notes)  # needs identity_float.onnx
        make_digits_pipeline_fixtures(out, notes)  # checks its split against digits_test.json
    except CheckFailed as err:
        print(f"make_fixtures: check failed: {err}", file=sys.stderr)
        return 1

    print(f"fixtures in {out} (opset {OPSET}, IR version {IR_VERSION}, onnxruntime {ort.__version__})")
    total = 0
    for path in sorted(out.iterdir()):
        data = path.read_bytes()
        total += len(data)
        print(f"  {path.name:28} {len(data):>8} B  sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    print(f"  total {total} B")
    for note in notes:
        print(f"- {note}")
    unsupported = [n for n in notes if "NOT working" in n]
    return 2 if unsupported else 0


if __name__ == "__main__":
    sys.exit(main())
