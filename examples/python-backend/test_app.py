"""End-to-end tests of the FastAPI example against a real registryd.

The app runs in-process (FastAPI's TestClient); the app talks to the registryd listening on the
Unix socket in $REGISTRY_SOCKET, which must serve the example model root (examples/models:
digits version 1 = logistic regression, version 2 = MLP). The expected labels are
scikit-learn's own predictions for the 360 test rows, recorded in
Tests/Fixtures/models/digits_test.json ($DIGITS_TEST_JSON overrides the path); each answer is
checked against the predictions of the artifact that actually answered (by its SHA-256), so the
test holds whichever version is production. The tests only read and predict: they change no
registry state.

    REGISTRY_SOCKET=/run/registryd/registryd.sock python -m unittest -v test_app.py
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import struct
import sys
import tempfile
import time
import unittest
import warnings
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # so that `python -m unittest path/to/test_app.py` finds app.py

# Starlette 1.x prefers the httpx2 package for its TestClient and warns when it falls back to
# httpx; httpx works, and the app itself uses httpx.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*", category=Warning)
    from fastapi.testclient import TestClient

import app as backend  # noqa: E402

# ../../Tests/Fixtures/models/digits_test.json from this file, or $DIGITS_TEST_JSON; the .onnx
# fixtures are looked up beside it.
DIGITS_TEST_JSON = Path(os.environ.get(
    "DIGITS_TEST_JSON", HERE.parent.parent / "Tests" / "Fixtures" / "models" / "digits_test.json"))
FIXTURES = DIGITS_TEST_JSON.parent
SOCKET = os.environ.get("REGISTRY_SOCKET", backend.DEFAULT_SOCKET)
MODEL = os.environ.get("REGISTRY_MODEL", backend.DEFAULT_MODEL)

# Which recorded predictions belong to which artifact (file name -> key in digits_test.json).
FIXTURE_PREDICTIONS = {"digits_logreg.onnx": "logreg_predictions", "digits_mlp.onnx": "mlp_predictions"}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def setUpModule() -> None:
    """Wait (up to 30 s) for registryd to be ready, so CI may start it just before the tests."""
    deadline = time.monotonic() + 30
    last = ""
    with httpx.Client(transport=httpx.HTTPTransport(uds=SOCKET), base_url="http://registryd", timeout=5) as raw:
        while time.monotonic() < deadline:
            try:
                response = raw.get("/v2/health/ready")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = str(exc)
            time.sleep(0.2)
    raise RuntimeError(f"registryd on {SOCKET} is not ready after 30 s ({last}); "
                       f"start it and set REGISTRY_SOCKET")


class RegistryBackendTest(unittest.TestCase):
    client: TestClient
    data: dict
    expected_by_sha: dict[str, list[int]]
    loaded_versions: dict[int, str]

    @classmethod
    def setUpClass(cls) -> None:
        with DIGITS_TEST_JSON.open() as f:
            cls.data = json.load(f)
        cls.rows = cls.data["features"]
        cls.expected_by_sha = {
            sha256_of(FIXTURES / name): cls.data[key]
            for name, key in FIXTURE_PREDICTIONS.items() if (FIXTURES / name).exists()
        }
        # Ask registryd directly which versions are loaded, and which artifact each one is.
        with httpx.Client(transport=httpx.HTTPTransport(uds=SOCKET), base_url="http://registryd") as raw:
            meta = raw.get(f"/v2/models/{MODEL}").raise_for_status().json()
            cls.production_sha = meta["parameters"]["sha256"]
            cls.loaded_versions = {}
            for v in meta["versions"]:
                vmeta = raw.get(f"/v2/models/{MODEL}/versions/{v}").raise_for_status().json()
                cls.loaded_versions[int(v)] = vmeta["parameters"]["sha256"]
        if cls.production_sha not in cls.expected_by_sha:
            raise unittest.SkipTest(f"model {MODEL!r} production artifact {cls.production_sha[:12]} is not "
                                    f"one of the fixtures {sorted(FIXTURE_PREDICTIONS)}: serve examples/models")
        cls.client = TestClient(backend.create_app(socket_path=SOCKET, model=MODEL))
        cls.client.__enter__()  # runs the lifespan: one shared httpx client for all tests

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.__exit__(None, None, None)

    def predict(self, path: str, features: list, **extra) -> httpx.Response:
        return self.client.post(path, json={"features": features, **extra})

    def check_prediction(self, body: dict, transport: str) -> None:
        self.assertEqual(body["model"], MODEL)
        self.assertEqual(body["transport"], transport)
        self.assertRegex(body["sha256"], r"^[0-9a-f]{64}$")
        self.assertIn(body["sha256"], self.expected_by_sha, "answered by an artifact that is not a fixture")
        self.assertEqual(len(body["probabilities"]), 10)
        # The label is the argmax of the probabilities.
        self.assertEqual(body["label"], max(range(10), key=lambda i: body["probabilities"][i]))

    # ---------------------------------------------------------------------------------------

    def test_healthz(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json(), {"status": "ok", "registry_socket": SOCKET, "model": MODEL})

    def test_json_predictions_match_scikit_learn(self) -> None:
        """Every test row through /predict/features gives scikit-learn's label for its artifact."""
        for i, row in enumerate(self.rows):
            response = self.predict("/predict/features", row)
            self.assertEqual(response.status_code, 200, response.text)
            body = response.json()
            self.check_prediction(body, "json")
            self.assertEqual(body["routing"], "production")
            self.assertEqual(body["sha256"], self.production_sha)
            self.assertEqual(body["label"], self.expected_by_sha[body["sha256"]][i], f"row {i}")

    def test_binary_predictions_match_json(self) -> None:
        """The binary tensor path gives the same labels, and the same FP32 probabilities."""
        for i, row in enumerate(self.rows):
            binary = self.predict("/predict/features-binary", row)
            self.assertEqual(binary.status_code, 200, binary.text)
            b = binary.json()
            self.check_prediction(b, "binary")
            self.assertEqual(b["label"], self.expected_by_sha[b["sha256"]][i], f"row {i}")
            if i % 30 == 0:  # compare the decoded FP32 bytes with the JSON numbers on a sample
                j = self.predict("/predict/features", row).json()
                self.assertEqual((j["label"], j["model_version"], j["sha256"]),
                                 (b["label"], b["model_version"], b["sha256"]))
                for x, y in zip(j["probabilities"], b["probabilities"]):
                    self.assertTrue(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-30), f"row {i}: {x} != {y}")

    def test_pinned_versions(self) -> None:
        """Each loaded version, pinned, answers as its own artifact and with its own labels."""
        checked = 0
        for version, sha in sorted(self.loaded_versions.items()):
            expected = self.expected_by_sha.get(sha)
            if expected is None:
                continue
            for path in ("/predict/features", "/predict/features-binary"):
                labels = []
                for row in self.rows:
                    response = self.predict(path, row, version=version, routing_key="user-42")
                    self.assertEqual(response.status_code, 200, response.text)
                    body = response.json()
                    self.assertEqual((body["model_version"], body["sha256"], body["routing"]),
                                     (str(version), sha, "pinned"))
                    labels.append(body["label"])
                self.assertEqual(labels, expected, f"version {version} via {path}")
            checked += 1
        self.assertGreaterEqual(checked, 1)

    def test_accuracy_matches_recorded(self) -> None:
        """The production version's accuracy on the true labels is what scikit-learn measured."""
        key = dict((sha256_of(FIXTURES / n), k) for n, k in FIXTURE_PREDICTIONS.items())[self.production_sha]
        accuracy_key = key.replace("_predictions", "_accuracy")
        correct = 0
        for row, truth in zip(self.rows, self.data["labels"]):
            correct += self.predict("/predict/features-binary", row).json()["label"] == truth
        self.assertAlmostEqual(correct / len(self.rows), self.data[accuracy_key], places=9)

    def test_unknown_model_is_404_with_registryd_message(self) -> None:
        with TestClient(backend.create_app(socket_path=SOCKET, model="no-such-model")) as client:
            for path in ("/predict/features", "/predict/features-binary"):
                response = client.post(path, json={"features": self.rows[0]})
                self.assertEqual(response.status_code, 404, response.text)
                self.assertEqual(response.json(), {"detail": "model 'no-such-model' not found"})
            health = client.get("/healthz")
            self.assertEqual(health.status_code, 503)
            self.assertIn("model 'no-such-model' not found", health.json()["detail"])

    def test_unknown_version_is_404(self) -> None:
        missing = max(self.loaded_versions) + 1000
        for path in ("/predict/features", "/predict/features-binary"):
            response = self.predict(path, self.rows[0], version=missing)
            self.assertEqual(response.status_code, 404, response.text)
            self.assertEqual(response.json(), {"detail": f"model '{MODEL}' version {missing} not found"})

    def test_wrong_feature_count_is_400_with_registryd_message(self) -> None:
        for path in ("/predict/features", "/predict/features-binary"):
            for features in ([1.0, 2.0, 3.0], self.rows[0] + [0.0], []):
                response = self.predict(path, features)
                self.assertEqual(response.status_code, 400, response.text)
                detail = response.json()["detail"]
                self.assertIn("input 'input' must have shape [?, 64]", detail)
                self.assertIn(f"got [1, {len(features)}]", detail)

    def test_malformed_body_is_422(self) -> None:
        for body in (b'{"features": "seven"}', b'{"features": [1, "x"]}', b'{"features": [NaN]}', b'{"features": [1e39]}',
                     b'{"features": [1], "extra": 1}', b'{"features": [1], "version": 0}', b"not json"):
            response = self.client.post("/predict/features", content=body,
                                        headers={"Content-Type": "application/json"})
            self.assertEqual(response.status_code, 422, f"{body!r}: {response.text}")
            self.assertIsInstance(response.json()["detail"], list)

    def test_unreachable_socket_is_503(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "missing.sock")
            stale = os.path.join(tmp, "stale.sock")  # a socket file nobody listens on
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(stale)
            s.close()
            for path in (missing, stale):
                with TestClient(backend.create_app(socket_path=path)) as client, \
                        self.assertLogs("registry-backend", "WARNING"):
                    for endpoint in ("/predict/features", "/predict/features-binary"):
                        response = client.post(endpoint, json={"features": self.rows[0]})
                        self.assertEqual(response.status_code, 503, response.text)
                        self.assertIn(f"registryd is unreachable on unix socket {path}", response.json()["detail"])
                        self.assertEqual(response.headers.get("Retry-After"), "1")
                    health = client.get("/healthz")
                    self.assertEqual(health.status_code, 503)
                    self.assertIn("unreachable", health.json()["detail"])

    def test_registryd_timeout_is_504(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "silent.sock")
            silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.bind(path)
            silent.listen(8)  # accepts connections in the backlog, never answers
            try:
                with TestClient(backend.create_app(socket_path=path, timeout=0.3)) as client, \
                        self.assertLogs("registry-backend", "WARNING") as logs:
                    response = client.post("/predict/features", json={"features": self.rows[0]})
                    self.assertEqual(response.status_code, 504, response.text)
                    self.assertIn("did not answer", response.json()["detail"])
                self.assertIn("-> 504", logs.output[0])
            finally:
                silent.close()


class BinaryDecodingTest(unittest.TestCase):
    """parse_binary_response on hand-built responses (no daemon needed)."""

    def test_parses_outputs_in_order(self) -> None:
        header = json.dumps({"model_name": "m", "model_version": "3", "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}},
            {"name": "inline", "datatype": "INT32", "shape": [1], "data": [5]},
            {"name": "p", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "s", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}},
        ]}).encode()
        body = header + struct.pack("<2q", 7, -1) + struct.pack("<2f", 0.5, 0.25) + \
            struct.pack("<I", 2) + b"hi" + struct.pack("<I", 1) + b"x"
        answer = backend.parse_binary_response(
            httpx.Headers({"Inference-Header-Content-Length": str(len(header))}), body)
        self.assertEqual(answer["_outputs"], {"label": [7, -1], "inline": [5], "p": [0.5, 0.25], "s": [b"hi", b"x"]})

    def test_rejects_truncated_and_trailing_bytes(self) -> None:
        header = json.dumps({"outputs": [
            {"name": "label", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 8}}]}).encode()
        headers = httpx.Headers({"Inference-Header-Content-Length": str(len(header))})
        for tail in (b"\0" * 4, b"\0" * 12):
            with self.assertRaises(backend.RegistryError) as caught:
                backend.parse_binary_response(headers, header + tail)
            self.assertEqual(caught.exception.status, 502)


if __name__ == "__main__":
    unittest.main()
