#!/usr/bin/env python3
"""Drives a running registryd with PyPI's tritonclient[http], unchanged and with its defaults.

Usage: tritonclient_check.py HOST:PORT DIGITS_TEST_JSON
Run by the Swift test suite (RegistryTests/TritonClientTests) against a daemon it started;
prints one line per check and exits non-zero at the first failure.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def check(condition, what):
    if not condition:
        print(f"FAIL {what}")
        sys.exit(1)
    print(f"ok {what}")


def main():
    url, digits_path = sys.argv[1], sys.argv[2]
    client = httpclient.InferenceServerClient(url=url)
    check(client.is_server_live(), "is_server_live")
    check(client.is_server_ready(), "is_server_ready")
    check(client.is_model_ready("digits"), "is_model_ready digits")
    check(client.is_model_ready("digits", "1"), "is_model_ready digits version 1")
    check(not client.is_model_ready("nope"), "is_model_ready nope is false")
    metadata = client.get_server_metadata()
    check(metadata["name"] == "registryd" and "binary_tensor_data" in metadata["extensions"], "get_server_metadata")
    model = client.get_model_metadata("digits")
    check(model["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 64]}, "get_model_metadata")

    data = json.load(open(digits_path))
    features = np.array(data["features"], dtype=np.float32)
    expected = np.array(data["logreg_predictions"], dtype=np.int64)

    # Defaults: binary input, binary outputs; the whole test split in one batch.
    inputs = [httpclient.InferInput("input", list(features.shape), "FP32")]
    inputs[0].set_data_from_numpy(features)
    result = client.infer("digits", inputs, request_id="batch-1")
    labels = result.as_numpy("label")
    check(labels is not None and np.array_equal(labels, expected), f"binary infer: {len(expected)} labels equal scikit-learn's")
    probabilities = result.as_numpy("probabilities")
    check(probabilities.shape == (len(expected), 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5), "binary probabilities")
    response = result.get_response()
    check(response["model_version"] == "1" and response["id"] == "batch-1", "response names the version and echoes the id")

    # JSON both ways, one requested output, pinned version.
    inputs = [httpclient.InferInput("input", [1, 64], "FP32")]
    inputs[0].set_data_from_numpy(features[:1], binary_data=False)
    outputs = [httpclient.InferRequestedOutput("label", binary_data=False)]
    result = client.infer("digits", inputs, model_version="1", outputs=outputs)
    check(result.as_numpy("label").tolist() == [int(expected[0])], "JSON infer, pinned version, one output")
    check(result.as_numpy("probabilities") is None, "unrequested output absent")

    # Datatypes through identity models.
    cases = {
        "id-bool": np.array([[True, False, True, False]]),
        "id-uint8": np.array([[0, 1, 254, 255]], dtype=np.uint8),
        "id-int64": np.array([[-(2**63), -1, 2**53 + 1, 2**63 - 1]], dtype=np.int64),
        "id-fp16": np.array([[0.5, -2.0, 65504.0, 0.0]], dtype=np.float16),
        "id-fp64": np.array([[0.1, -2.5, 1e308, 5e-324]], dtype=np.float64),
        "id-bytes": np.array([[b"a", b"", "caf\u00e9".encode(), b"\x00\xff"]], dtype=np.object_),
    }
    datatype = {"id-bool": "BOOL", "id-uint8": "UINT8", "id-int64": "INT64", "id-fp16": "FP16", "id-fp64": "FP64", "id-bytes": "BYTES"}
    for name, array in cases.items():
        for binary in (True, False):
            if name == "id-bytes" and not binary:
                array_in = np.array([[b"a", b"", "caf\u00e9".encode(), b"xy"]], dtype=np.object_)
            else:
                array_in = array
            inputs = [httpclient.InferInput("x", list(array_in.shape), datatype[name])]
            inputs[0].set_data_from_numpy(array_in, binary_data=binary)
            out = client.infer(name, inputs, outputs=[httpclient.InferRequestedOutput("y", binary_data=binary)]).as_numpy("y")
            if name == "id-bytes":
                got = [x if isinstance(x, bytes) else str(x).encode() for x in out.flatten()]
                check(got == list(array_in.flatten()), f"{datatype[name]} round trip, binary={binary}")
            else:
                check(out.dtype == array_in.dtype and np.array_equal(out, array_in), f"{datatype[name]} round trip, binary={binary}")

    # Errors arrive as InferenceServerException with registryd's message.
    try:
        client.infer("nope", [inputs[0]])
        check(False, "unknown model raises")
    except InferenceServerException as error:
        check("model 'nope' not found" in error.message(), "unknown model: " + error.message())
    bad = [httpclient.InferInput("input", [1, 3], "FP32")]
    bad[0].set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    try:
        client.infer("digits", bad)
        check(False, "wrong shape raises")
    except InferenceServerException as error:
        check("input" in error.message() and error.status() == "400", "wrong shape: 400 " + error.message())
    print("all checks passed")


if __name__ == "__main__":
    main()
