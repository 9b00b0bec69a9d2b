#!/usr/bin/env python3
"""tritonclient's class_count against registryd, byte for byte against a NumPy reference.

Usage: tritonclient_classification_check.py HOST:PORT DIGITS_TEST_JSON SKIN_HEADS_TEST_JSON
Run by the Swift test suite (RegistryTests/TritonClientTests) against a daemon it started with:
  digits-named  digits_logreg.onnx, manifest labels {"probabilities": [8 names]} (classes 8 and
                9 unnamed);
  skin          skin_heads.onnx with skin_heads_manifest.json (heads skin_type, hair_type and
                condition of the output "logits").
For each, the scores are fetched raw, the reference is computed here with NumPy the way Triton's
server formats a classification ("%f" score, index, label when named; highest first, equal
scores in index order, min(k, C) per row), and InferRequestedOutput(name, class_count=k) must
receive exactly those bytes, in binary and in JSON. Prints one line per check and exits non-zero
at the first failure.
"""
import json
import math
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

DIGITS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven"]


def check(condition, what):
    if not condition:
        print(f"FAIL {what}")
        sys.exit(1)
    print(f"ok {what}")


def triton_classes(scores, k, labels):
    """Triton's classification text of a [N, C] score array, as bytes, shape [N, min(k, C)]."""
    rows = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[: min(k, row.shape[0])]
        texts = []
        for i in order:
            text = "%f:%d" % (float(row[i]), i)
            if i < len(labels) and labels[i]:
                text += ":" + labels[i]
            texts.append(text.encode())
        rows.append(texts)
    return np.array(rows, dtype=np.object_)


def softmax_like_registryd(logits):
    """The head's reference: maximum subtracted, exp in double rounded to float32, float32 sum in
    index order, float32 division."""
    out = np.empty_like(logits, dtype=np.float32)
    for r, row in enumerate(logits.astype(np.float32)):
        shifted = row - row.max()
        exps = [np.float32(math.exp(float(v))) for v in shifted]
        total = np.float32(0)
        for e in exps:
            total = np.float32(total + e)
        out[r] = [np.float32(e / total) for e in exps]
    return out


def as_bytes(array):
    """A BYTES output as bytes elements, whichever form (binary gives bytes, JSON gives str)."""
    return np.array([x if isinstance(x, bytes) else str(x).encode() for x in array.flatten()], dtype=np.object_).reshape(array.shape)


def infer(client, model, name, array, outputs):
    inputs = [httpclient.InferInput(name, list(array.shape), "FP32")]
    inputs[0].set_data_from_numpy(array)
    return client.infer(model, inputs, outputs=outputs)


def classified(client, model, name, array, output, k, labels, scores, what):
    expected = triton_classes(scores, k, labels)
    for binary in (True, False):
        result = infer(client, model, name, array, [httpclient.InferRequestedOutput(output, binary_data=binary, class_count=k)])
        got = result.as_numpy(output)
        described = result.get_output(output)
        check(described["datatype"] == "BYTES" and described["shape"] == list(expected.shape),
              f"{what}: BYTES {list(expected.shape)}, binary={binary}")
        check(np.array_equal(as_bytes(got), expected), f"{what}: class_count={k} byte for byte, binary={binary}")


def main():
    url, digits_path, skin_path = sys.argv[1], sys.argv[2], sys.argv[3]
    client = httpclient.InferenceServerClient(url=url)

    # A plain output with the manifest's (short) list of names.
    digits = np.array(json.load(open(digits_path))["features"], dtype=np.float32)
    probabilities = infer(client, "digits-named", "input", digits, [httpclient.InferRequestedOutput("probabilities")]).as_numpy("probabilities")
    check(probabilities.shape == (len(digits), 10), f"digits-named: raw probabilities {probabilities.shape}")
    for k in (1, 3, 10, 25):
        classified(client, "digits-named", "input", digits, "probabilities", k, DIGITS_NAMES, probabilities, f"digits-named probabilities ({len(digits)} rows)")
    unnamed = triton_classes(probabilities, 1, DIGITS_NAMES)
    check(any(x.count(b":") == 1 for x in unnamed.flatten()), "some rows' top class is past the names (8 or 9): no label")

    # Heads: served beside their output, with their names; their values as the reference computes them.
    metadata = client.get_model_metadata("skin")
    check([o["name"] for o in metadata["outputs"]] == ["logits", "skin_type", "hair_type", "condition"], "skin: heads in the model metadata")
    skin = json.load(open(skin_path))
    manifest_heads = json.load(open(skin_path.replace("_test.json", "_manifest.json")))["heads"]["logits"]
    inputs = np.array(skin["inputs"], dtype=np.float32)
    names = ["logits"] + [h["name"] for h in manifest_heads]
    result = infer(client, "skin", "input", inputs, [httpclient.InferRequestedOutput(n) for n in names])
    logits = result.as_numpy("logits")
    check(np.array_equal(logits, np.array(skin["logits"], dtype=np.float32)), "skin: logits equal the fixture's (exact on any CPU)")
    start = 0
    for head in manifest_heads:
        piece = logits[:, start:start + head["size"]]
        reference = softmax_like_registryd(piece) if head["softmax"] else piece
        values = result.as_numpy(head["name"])
        check(values.dtype == np.float32 and np.array_equal(values, reference), f"skin: head {head['name']} equals the NumPy reference bit for bit")
        for k in (1, 3, head["size"] + 2):
            classified(client, "skin", "input", inputs, head["name"], k, head["labels"], values, f"skin head {head['name']}")
        start += head["size"]

    # Refusals arrive as InferenceServerException with registryd's message.
    output = httpclient.InferRequestedOutput("probabilities", class_count=-1)
    try:
        infer(client, "digits-named", "input", digits[:1], [output])
        check(False, "class_count=-1 raises")
    except InferenceServerException as error:
        check(error.status() == "400" and "must be a positive integer" in error.message(), "class_count=-1: 400 " + error.message())
    print("all checks passed")


if __name__ == "__main__":
    main()
