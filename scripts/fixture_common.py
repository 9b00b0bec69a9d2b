"""What the fixture generators share: the ONNX versions they write, the checks, and the digits
split. Imported by scripts/make_fixtures.py and the modules it calls (fixtures_*.py); not a
program of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OPSET = 17
IR_VERSION = 8

SEED_SPLIT = 0  # fixed by the test plan: train_test_split(random_state=0)

# onnxruntime raises one exception class per status code (Fail, InvalidArgument,
# InvalidProtobuf, ...) with no common base class other than Exception.
ORT_ERRORS = tuple(
    v for v in vars(ort_state).values() if isinstance(v, type) and issubclass(v, Exception)
)


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def make_model(graph: onnx.GraphProto, **kwargs) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        **kwargs,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def session(model: onnx.ModelProto | bytes, quiet: bool = False) -> ort.InferenceSession:
    """quiet: the caller expects Run to fail; keep onnxruntime from logging each failure."""
    options = ort.SessionOptions()
    if quiet:
        options.log_severity_level = 4  # fatal only
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def save(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString())


def normalize_opsets(model: onnx.ModelProto) -> None:
    """Make skl2onnx's opset_import list canonical: one entry per domain, sorted by domain.

    skl2onnx 1.20 can list the default domain twice, and its order of domains follows Python's
    per-process string hashing (PYTHONHASHSEED), which would make the bytes differ between runs.
    """
    versions: dict[str, int] = {}
    for opset in model.opset_import:
        versions.setdefault(opset.domain, opset.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))


def convert_classifier(model, graph_name: str) -> onnx.ModelProto:
    """A scikit-learn classifier as ONNX: input "input" float [N, 64], outputs "label" int64 [N]
    and "probabilities" float [N, C]."""
    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={"zipmap": False},
        target_opset=OPSET,
    )
    # skl2onnx names the graph with a random UUID; a fixed name keeps the bytes reproducible.
    onx.graph.name = graph_name
    normalize_opsets(onx)
    onnx.checker.check_model(onx, full_check=True)
    check([o.name for o in onx.graph.output] == ["label", "probabilities"],
          f"{graph_name}: outputs {[o.name for o in onx.graph.output]}")
    return onx


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, split as every digits fixture splits it:
    (X_train, X_test, y_train, y_test), features integers 0..16 as float64, 360 test rows."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, random_state=SEED_SPLIT, stratify=y)
