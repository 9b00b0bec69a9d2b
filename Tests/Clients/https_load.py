#!/usr/bin/env python3
"""Keeps 8 threads predicting over HTTPS while a test rotates the server's certificate.

Usage: https_load.py HOST:PORT CA_FILE DIGITS_TEST_JSON CONTROL_DIR

Each thread sends digits predictions on a keep-alive connection and opens a new connection every
20 requests, remembering the certificate each connection was given (SHA-256 of its DER). The
test steers it with files in CONTROL_DIR:
  running      written here once every thread has had an answer
  rotated      written by the test once the daemon reports the new certificate in force; holds
               its fingerprint: every connection a thread opens after seeing it must present it
  progress     written here about every 0.2 s: the figures so far, as JSON
  stop         written by the test: the threads finish and the totals are printed as JSON
Every failed request counts (no retries); it asserts nothing itself.
"""
import hashlib
import http.client
import json
import os
import ssl
import sys
import threading
import time

THREADS = 8
REQUESTS_PER_CONNECTION = 20


def main():
    address, ca, digits_path, control = sys.argv[1:5]
    host, port = address.rsplit(":", 1)
    data = json.load(open(digits_path))
    rows = data["features"][:THREADS]
    expected = data["logreg_predictions"][:THREADS]
    context = ssl.create_default_context(cafile=ca)
    lock = threading.Lock()
    totals = {"requests": 0, "failures": 0, "wrong_labels": 0, "failure_samples": [], "connections": 0,
              "connections_after_rotation": 0, "stale_after_rotation": 0, "fingerprints": {}}
    answered = set()

    def rotated_fingerprint():
        try:
            return open(os.path.join(control, "rotated")).read().strip()
        except OSError:
            return None

    def worker(index):
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": rows[index]}]})
        connection, sent = None, 0
        while not os.path.exists(os.path.join(control, "stop")):
            try:
                if connection is None or sent == REQUESTS_PER_CONNECTION:
                    if connection is not None:
                        connection.close()
                    expected_fingerprint = rotated_fingerprint()
                    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
                    connection.connect()
                    fingerprint = hashlib.sha256(connection.sock.getpeercert(binary_form=True)).hexdigest()
                    sent = 0
                    with lock:
                        totals["connections"] += 1
                        totals["fingerprints"][fingerprint] = totals["fingerprints"].get(fingerprint, 0) + 1
                        if expected_fingerprint is not None:
                            totals["connections_after_rotation"] += 1
                            if fingerprint != expected_fingerprint:
                                totals["stale_after_rotation"] += 1
                connection.request("POST", "/v2/models/digits/infer", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                sent += 1
                label = next(o for o in answer["outputs"] if o["name"] == "label")["data"][0] if response.status == 200 else None
                with lock:
                    totals["requests"] += 1
                    if response.status != 200:
                        totals["failures"] += 1
                        totals["failure_samples"] = (totals["failure_samples"] + [f"HTTP {response.status}"])[:5]
                    elif label != expected[index]:
                        totals["wrong_labels"] += 1
                    answered.add(index)
            except Exception as error:  # every failure counts; the connection starts over
                with lock:
                    totals["requests"] += 1
                    totals["failures"] += 1
                    totals["failure_samples"] = (totals["failure_samples"] + [repr(error)])[:5]
                connection, sent = None, REQUESTS_PER_CONNECTION
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    announced = False
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        with lock:
            snapshot = json.dumps(totals)
            ready = len(answered) == THREADS
        with open(os.path.join(control, "progress.tmp"), "w") as out:
            out.write(snapshot)
        os.replace(os.path.join(control, "progress.tmp"), os.path.join(control, "progress"))
        if ready and not announced:
            open(os.path.join(control, "running"), "w").close()
            announced = True
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
