#!/usr/bin/env python3
"""Predicts over HTTPS with Python's own ssl module and with PyPI's tritonclient[http] (ssl=True),
and checks that the labels are scikit-learn's.

Usage: tls_check.py HOST:PORT CA_FILE DIGITS_TEST_JSON [CLIENT_CERT CLIENT_KEY]
Run by the Swift test suite (RegistryTests/TLSClientTests, TLSMutualTests) against a daemon it
started; prints one line per check and exits non-zero at the first failure.
"""
import http.client
import json
import ssl
import sys

import numpy as np
import tritonclient.http as httpclient


def check(condition, what):
    if not condition:
        print(f"FAIL {what}")
        sys.exit(1)
    print(f"ok {what}")


def main():
    address, ca, digits_path = sys.argv[1], sys.argv[2], sys.argv[3]
    cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
    host, port = address.rsplit(":", 1)
    data = json.load(open(digits_path))
    features = np.array(data["features"], dtype=np.float32)
    expected = np.array(data["logreg_predictions"], dtype=np.int64)

    # Python's ssl: verification against the test CA, hostname (an IP address) checked.
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    if cert:
        context.load_cert_chain(cert, key)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    labels, statuses = [], []
    for row in features[:20]:
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": row.tolist()}]})
        connection.request("POST", "/v2/models/digits/infer", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        statuses.append(response.status)
        if response.status == 200:
            labels.append(next(o for o in answer["outputs"] if o["name"] == "label")["data"][0])
    version = connection.sock.version()
    alpn = connection.sock.selected_alpn_protocol()
    connection.close()
    check(statuses == [200] * 20, f"python ssl: statuses {sorted(set(statuses))}")
    check(version in ("TLSv1.3", "TLSv1.2"), f"python ssl negotiated {version}")
    check(alpn == "http/1.1", f"python ssl: ALPN chose {alpn}")
    check(labels == expected[:20].tolist(), "python ssl: 20 labels over one keep-alive connection equal scikit-learn's")

    # tritonclient with ssl=True, its defaults otherwise (binary tensors): the whole test split.
    options = {"ca_certs": ca}
    if cert:
        options.update({"certfile": cert, "keyfile": key})
    client = httpclient.InferenceServerClient(url=address, ssl=True, ssl_options=options)
    check(client.is_server_ready(), "tritonclient ssl=True: is_server_ready")
    inputs = [httpclient.InferInput("input", list(features.shape), "FP32")]
    inputs[0].set_data_from_numpy(features)
    result = client.infer("digits", inputs)
    check(np.array_equal(result.as_numpy("label"), expected), f"tritonclient ssl=True: {len(expected)} labels equal scikit-learn's")
    client.close()
    print("all checks passed")


if __name__ == "__main__":
    main()
