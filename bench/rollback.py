#!/usr/bin/env python3
"""Rollback time under load: command sent -> first request answered by the old version.

Starts nothing itself: point it at a running registryd whose model MODEL has two loaded
versions (the example registry.d's digits 1 and 2 will do). It keeps THREADS clients predicting
over the Unix socket, promotes NEW, then rolls back, REPEATS times, and prints the median, min
and max of (a) the time from sending the rollback to the first answer from the old version and
(b) the daemon's own elapsed_ms, plus the failed-request count. Prints; asserts nothing.

    bench/rollback.py --socket .state/registryd.sock --model digits --old 1 --new 2
"""
import argparse, http.client, json, socket, statistics, threading, time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(conn, method, path, body):
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--model", default="digits")
    parser.add_argument("--old", type=int, default=1)
    parser.add_argument("--new", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}], "outputs": [{"name": "label"}]}
    samples, failures, stop = [], [0], threading.Event()
    lock = threading.Lock()

    def load():
        conn = UnixHTTPConnection(args.socket)
        while not stop.is_set():
            sent = time.perf_counter()
            try:
                status, answer = call(conn, "POST", f"/v2/models/{args.model}/infer", body)
            except Exception:
                status, answer = -1, {}
                conn = UnixHTTPConnection(args.socket)
            done = time.perf_counter()
            with lock:
                if status != 200:
                    failures[0] += 1
                else:
                    samples.append((sent, done, int(answer["model_version"])))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    control = UnixHTTPConnection(args.socket)
    observed, reported = [], []
    for _ in range(args.repeats):
        time.sleep(0.2)
        status, answer = call(control, "POST", f"/v1/models/{args.model}/promote", {"version": args.new, "reason": "bench"})
        assert status == 200, answer
        time.sleep(0.2)
        sent = time.perf_counter()
        status, answer = call(control, "POST", f"/v1/models/{args.model}/rollback", {"to": args.old, "reason": "bench"})
        assert status == 200, answer
        reported.append(answer["elapsed_ms"])
        time.sleep(0.2)
        with lock:
            first = min((done for s, done, v in samples if s >= sent and v == args.old), default=None)
        if first is not None:
            observed.append((first - sent) * 1000)
    stop.set()
    for t in threads:
        t.join()

    def summary(values):
        return f"median {statistics.median(values):.2f} ms (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"

    print(f"rollback, command -> first request on the old version: {summary(observed)}")
    print(f"rollback, daemon-side (decode, fsynced commit, publish): {summary(reported)}")
    print(f"requests: {len(samples)} answered, {failures[0]} failed, {args.threads} client threads")


if __name__ == "__main__":
    main()
