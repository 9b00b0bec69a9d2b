"""The digits pipeline's fixtures (a router and three group classifiers), called by
scripts/make_fixtures.py.

All take the raw 0..16 pixels of the bundled digits images as UINT8 [N, 64] through the
preprocessing contract in their manifests (cast to float32, times 1/16: they were trained on
pixels / 16), and answer "label" int64 [N] and "probabilities" float [N, C].

digits_router.onnx, digits_router_manifest.json
    A multi-layer perceptron (one hidden layer of 32) trained on the training split with
    targets the image's group: 0 for digits 0-3, 1 for 4-6, 2 for 7-9 (a linear model
    separates the groups less well: about 91% against 97%). "label" is the group (0, 1, 2); "probabilities" [N, 3] is
    labelled "0-3", "4-6", "7-9".
digits_router_b.onnx, digits_router_b_manifest.json
    The same task by another algorithm (a depth-8 decision tree): a second router for a
    pipeline version 2 that disagrees with the first on some test images.
digits_group0.onnx .. digits_group2.onnx, digits_group<g>_manifest.json
    LogisticRegression trained on the training images of group g only: 4, 3 and 3 classes.
    "label" is the global digit (group 1 answers 4, 5 or 6), "probabilities" [N, 4 | 3 | 3]
    is in the order of those digits and labelled with them ("4", "5", "6").
digits_pipeline_reference.json
    For the 360 test images, in the order of digits_test.json: the raw inputs, the true digits,
    and for each router ("router": digits_router, "router_b": digits_router_b) its outputs and
    the composed pipeline's (that router, then the classifier of the group it picked): group,
    label (the global digit) and the classifier's probabilities, all from onnxruntime on the
    models written here with the contract's float32 input. "agreement" compares the two
    pipelines row by row: groups, labels, and each as a fraction of the 360.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from fixture_common import check, convert_classifier, digits_split, save, session

SEED_ROUTER = 0
SEED_ROUTER_B = 7
GROUPS = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
GROUP_NAMES = ["0-3", "4-6", "7-9"]
SCALE = 0.0625  # the contract's scale: raw pixels 0..16 -> 0..1, exact in float32
CONTRACT = {"input": {"accepts": {"datatype": "UINT8", "layout": "NF"}, "scale": SCALE}}


def group_of(digits: np.ndarray) -> np.ndarray:
    return np.select([digits <= 3, digits <= 6], [0, 1], 2).astype(np.int64)


def write_manifest(out: Path, name: str, description: str, labels: list[str]) -> None:
    manifest = {"description": description, "labels": {"probabilities": labels}, "preprocess": CONTRACT}
    (out / f"{name}_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def run(model_bytes: bytes, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """label and probabilities for raw 0..16 pixels, fed as the contract makes them."""
    features = raw.astype(np.float32) * np.float32(SCALE)
    label, probabilities = session(model_bytes).run(["label", "probabilities"], {"input": features})
    return label, probabilities


def make_digits_pipeline_fixtures(out: Path, notes: list[str]) -> None:
    X_train, X_test, y_train, y_test = digits_split()
    X_train = X_train / 16  # what the contract's scale gives the model
    raw = X_test.astype(np.uint8)
    check(np.array_equal(raw, X_test) and raw.max() <= 16, "digits: test pixels are not integers 0..16")
    test_file = out / "digits_test.json"
    if test_file.exists():
        check(json.loads(test_file.read_text())["features"] == raw.astype(int).tolist(),
              "digits pipeline: test split differs from digits_test.json's")

    g_train = group_of(y_train)
    # One BLAS thread: multi-threaded reductions can change float rounding with the core count.
    with threadpool_limits(limits=1):
        routers = {
            "router": MLPClassifier(hidden_layer_sizes=(32,), max_iter=2000, random_state=SEED_ROUTER).fit(X_train, g_train),
            "router_b": DecisionTreeClassifier(max_depth=8, random_state=SEED_ROUTER_B).fit(X_train, g_train),
        }
        classifiers = []
        for digits in GROUPS:
            rows = np.isin(y_train, digits)
            classifiers.append(LogisticRegression(max_iter=5000).fit(X_train[rows], y_train[rows]))
    check(routers["router"].n_iter_ < 2000 and all(c.n_iter_.max() < 5000 for c in classifiers),
          "digits pipeline: a model did not converge")

    models: dict[str, bytes] = {}
    descriptions = {"router": "digits router: the image's group (0-3, 4-6, 7-9) by a perceptron",
                    "router_b": "digits router, second variant: the image's group by a decision tree"}
    for key, router in routers.items():
        onx = convert_classifier(router, f"digits_{key}")
        save(onx, out / f"digits_{key}.onnx")
        models[key] = onx.SerializeToString()
        write_manifest(out, f"digits_{key}", descriptions[key], GROUP_NAMES)
    for g, (digits, classifier) in enumerate(zip(GROUPS, classifiers)):
        check(classifier.classes_.tolist() == digits, f"digits_group{g}: classes {classifier.classes_}")
        onx = convert_classifier(classifier, f"digits_group{g}")
        save(onx, out / f"digits_group{g}.onnx")
        models[f"group{g}"] = onx.SerializeToString()
        write_manifest(out, f"digits_group{g}", f"digits {GROUP_NAMES[g]}: which of {len(digits)} digits, "
                       "trained on that group's images only", [str(d) for d in digits])

    reference = {"inputs": raw.astype(int).tolist(), "truth": y_test.astype(int).tolist(),
                 "groups": GROUPS, "group_names": GROUP_NAMES}
    for key in routers:
        group, router_probabilities = run(models[key], raw)
        sklearn_group = routers[key].predict(X_test / 16)
        mismatches = np.flatnonzero(group != sklearn_group)
        # Float32 ONNX against float64 scikit-learn may split near-ties differently; say where.
        notes.append(f"digits_{key}: ONNX group == sklearn predict except at test rows {mismatches.tolist()}")
        labels, probabilities = np.zeros(len(raw), dtype=np.int64), [None] * len(raw)
        for g, digits in enumerate(GROUPS):
            rows = np.flatnonzero(group == g)
            if len(rows) == 0:
                continue
            label, proba = run(models[f"group{g}"], raw[rows])
            check(proba.shape == (len(rows), len(digits)) and set(label.tolist()) <= set(digits),
                  f"digits_group{g}: answers {proba.shape} {sorted(set(label.tolist()))}")
            labels[rows] = label
            for row, p in zip(rows, proba):
                probabilities[row] = p.tolist()
        reference[key] = {
            "group": group.tolist(),
            "router_probabilities": router_probabilities.tolist(),
            "label": labels.tolist(),
            "probabilities": probabilities,
            "group_accuracy": float(np.mean(group == group_of(y_test))),
            "accuracy": float(np.mean(labels == y_test)),
        }
    a, b = reference["router"], reference["router_b"]
    same_group = int(np.sum(np.array(a["group"]) == np.array(b["group"])))
    same_label = int(np.sum(np.array(a["label"]) == np.array(b["label"])))
    check(same_label < len(raw), "digits pipeline: the two routers' pipelines agree everywhere; a shadow needs a difference")
    reference["agreement"] = {"rows": len(raw), "group": same_group, "label": same_label,
                              "group_fraction": same_group / len(raw), "label_fraction": same_label / len(raw)}
    (out / "digits_pipeline_reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    notes.append(
        f"digits pipeline: accuracy {a['accuracy']:.4f} (router groups {a['group_accuracy']:.4f}), "
        f"with router_b {b['accuracy']:.4f} ({b['group_accuracy']:.4f}); "
        f"the two agree on {same_group}/{len(raw)} groups and {same_label}/{len(raw)} labels"
    )
