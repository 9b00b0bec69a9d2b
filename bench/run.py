#!/usr/bin/env python3
"""registryd's benchmarks, side by side in one run: the in-process floor, registryd (Unix
socket and TCP, JSON and binary tensors), and the reference peer (FastAPI + uvicorn +
onnxruntime, one worker), on the same machine, the same models and the same load generator.

Run it through `bench/run` (which builds the release binaries and the peer's venv first).
Every figure is the median of --repeats runs, with min and max, and is reported with its ratio
to the floor and to the peer measured in the same run. Results go to bench/results/latest.json
and BENCHMARKS.md. It prints and writes; it asserts nothing (the machine is shared and noisy).
"""
import argparse, http.client, json, os, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_BIN = ROOT / ".build/release/registryd-bench"
REGISTRYD = ROOT / ".build/release/registryd"
FIXTURES = ROOT / "Tests/Fixtures/models"
PEER_PY = ROOT / ".venv-bench/bin/python"
RESNET = next((ROOT / ".venv/lib").glob("python3*/site-packages/onnx/backend/test/data/light/light_resnet50.onnx"), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def control(sock, method, path, body=None):
    conn = UnixHTTPConnection(sock)
    conn.request(method, path, body=None if body is None else json.dumps(body))
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data or b"{}")


def wait_until(predicate, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------
# Request bodies


def v2_json(name, shape, values):
    return json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": shape, "data": values}]}).encode()


def v2_binary(name, shape, values):
    raw = struct.pack(f"<{len(values)}f", *values)
    # Outputs come back in binary too (binary_data_output), as tritonclient asks by default.
    head = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return head, raw


def write_bodies(work):
    digits = json.loads((FIXTURES / "digits_test.json").read_text())
    row = [float(v) for v in digits["features"][0]]
    image = [((i * 7919) % 255) / 255.0 for i in range(3 * 224 * 224)]
    bodies = {}
    for model, name, shape, values in [("digits", "input", [1, 64], row), ("resnet50", "gpu_0/data_0", [1, 3, 224, 224], image)]:
        json_path = work / f"{model}.json"
        json_path.write_bytes(v2_json(name, shape, values))
        head, raw = v2_binary(name, shape, values)
        bin_path = work / f"{model}.bin"
        bin_path.write_bytes(head + raw)
        bodies[model] = {"json": (json_path, []), "binary": (bin_path, [f"Inference-Header-Content-Length:{len(head)}"])}
    return bodies


# ---------------------------------------------------------------------------------------------
# Processes


class Registryd:
    def __init__(self, work, threads, extra=None):
        self.work = work
        self.root = work / "models"
        for model, version, source in [("digits", 1, FIXTURES / "digits_logreg.onnx"), ("digits", 2, FIXTURES / "digits_mlp.onnx"),
                                       ("resnet50", 1, RESNET)]:
            d = self.root / model / str(version)
            d.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, d / "model.onnx")
        self.socket = str(work / "registryd.sock")
        self.port = free_port()
        config = work / "registry.d"
        (config / "models").mkdir(parents=True, exist_ok=True)
        (config / "registryd.json").write_text(json.dumps({
            "model_root": str(self.root), "database": str(work / "catalog.sqlite"), "control_socket": self.socket,
            "listen": f"127.0.0.1:{self.port}", "onnx_threads": threads, "log_level": "warning", "settle_seconds": 0.5,
            "max_body_bytes": 64 << 20, **(extra or {})}))
        for model in ["digits", "resnet50"]:
            (config / "models" / f"{model}.json").write_text(json.dumps({"on_new_version": "ready", "keep_previous": 2}))
        self.log = open(work / "registryd.log", "w")
        self.process = subprocess.Popen([str(REGISTRYD), "--config", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: control(self.socket, "GET", "/v2/health/ready")[0] == 200, what="registryd ready")

    def rss_mib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None


class Peer:
    def __init__(self, work, threads):
        self.port = free_port()
        env = dict(os.environ, PEER_MODELS=f"digits={FIXTURES / 'digits_logreg.onnx'},resnet50={RESNET}", PEER_THREADS=str(threads))
        self.log = open(work / "peer.log", "w")
        self.process = subprocess.Popen([str(PEER_PY), str(ROOT / "bench/peer/app.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/v2/health/ready")
            return conn.getresponse().status == 200
        wait_until(ready, what="the FastAPI peer")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


# ---------------------------------------------------------------------------------------------
# Measurements


def run_tool(args):
    out = subprocess.run([str(BENCH_BIN)] + args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: registryd-bench {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load(endpoint, target, body, concurrency, seconds, warmup):
    path, headers = body
    args = ["load", *endpoint, "--target", target, "--body", str(path), "--concurrency", str(concurrency), "--seconds", str(seconds), "--warmup", str(warmup)]
    for h in headers:
        args += ["--header", h]
    return run_tool(args)


def summary(samples, key):
    values = [s[key] for s in samples]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def repeat(n, fn):
    return [fn() for _ in range(n)]


def lifecycle_figures(reg, repeats):
    """Rename -> first served request; rollback command -> first request on the old version;
    failed requests and p99 under load with and without 100 hot swaps."""
    out = {}
    digits = json.loads((FIXTURES / "digits_test.json").read_text())
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": digits["features"][0]}]})

    def served_version(conn, path="/v2/models/digits/infer"):
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data).get("model_version")

    # New version: atomic rename -> first answer from it (pinned path polled), repeated.
    times = []
    conn = UnixHTTPConnection(reg.socket)
    for i in range(repeats):
        version = 10 + i
        staging = reg.root / "digits" / f".staging-{version}"
        staging.mkdir()
        data = (FIXTURES / "digits_mlp.onnx").read_bytes() + bytes([0xC0, 0x3E, version])  # unknown field: new bytes, same model
        (staging / "model.onnx").write_bytes(data)
        os.sync()
        start = time.perf_counter()
        os.rename(staging, reg.root / "digits" / str(version))
        while True:
            status, _ = served_version(conn, f"/v2/models/digits/versions/{version}/infer")
            if status == 200:
                break
            time.sleep(0.0005)
        times.append((time.perf_counter() - start) * 1000)
    status, detail = control(reg.socket, "GET", f"/v1/events?model=digits&action=ready&limit={repeats}")
    load_seconds = []
    for event in detail if isinstance(detail, list) else []:
        reason = event.get("reason", "")
        if reason.startswith("loaded and warmed up in "):
            load_seconds.append(float(reason.split()[5]) * 1000)
    out["rename_to_served_ms"] = {"median": statistics.median(times), "min": min(times), "max": max(times),
                                  "load_ms_median": statistics.median(load_seconds) if load_seconds else None}

    # Rollback: promote 2, then time rollback -> first answer from version 1, under light load.
    rollback_ms, daemon_ms = [], []
    for _ in range(repeats):
        control(reg.socket, "POST", "/v1/models/digits/promote", {"version": 2, "force": True})
        start = time.perf_counter()
        status, result = control(reg.socket, "POST", "/v1/models/digits/rollback", {"to": 1})
        while served_version(conn)[1] != "1":
            pass
        rollback_ms.append((time.perf_counter() - start) * 1000)
        daemon_ms.append(result.get("elapsed_ms", float("nan")))
    out["rollback_ms"] = {"median": statistics.median(rollback_ms), "min": min(rollback_ms), "max": max(rollback_ms),
                          "daemon_ms_median": statistics.median(daemon_ms)}
    conn.close()
    return out


def swaps_under_load(reg, bodies, seconds, swaps):
    """The same load (8 connections, Unix socket, digits JSON) with and without `swaps` promotions
    alternating between versions 1 and 2 during the measured window."""
    endpoint = ["--unix", reg.socket]
    quiet = load(endpoint, "/v2/models/digits/infer", bodies["digits"]["json"], 8, seconds, 1)
    result = {}

    def swapper():
        time.sleep(1.2)  # after the warm-up
        gap = (seconds - 0.5) / swaps
        for i in range(swaps):
            control(reg.socket, "POST", "/v1/models/digits/promote", {"version": 2 if i % 2 == 0 else 1, "force": True})
            time.sleep(gap)
        result["swaps"] = swaps
    thread = threading.Thread(target=swapper)
    thread.start()
    busy = load(endpoint, "/v2/models/digits/infer", bodies["digits"]["json"], 8, seconds, 1)
    thread.join()
    return {"without": quiet, "with": busy, "swaps": result.get("swaps", 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--cnn-seconds", type=float, default=8)
    parser.add_argument("--shadow-repeats", type=int, default=8, help="repeats of the shadow group's four interleaved arms")
    parser.add_argument("--shadow-seconds", type=float, default=2)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for registryd and the peer")
    parser.add_argument("--out", default=str(ROOT / "bench/results/latest.json"))
    parser.add_argument("--quick", action="store_true", help="one repeat, short runs: to check the harness")
    parser.add_argument("--only", choices=["shadow", "cnn"], help="run only this group (written to --out; BENCHMARKS.md is left alone)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.cnn_seconds, args.shadow_repeats, args.shadow_seconds = 1, 1, 2, 1, 1
    if RESNET is None:
        raise SystemExit("bench: light_resnet50.onnx not found in .venv (run scripts/setup.sh)")
    work = Path(tempfile.mkdtemp(prefix="registryd-bench-"))
    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "repeats": args.repeats, "seconds": args.seconds, "shadow_seconds": args.shadow_seconds, "threads": args.threads, "rows": []}
    bodies = write_bodies(work)
    rows = results["rows"]

    def record(group, label, samples, **extra):
        row = {"group": group, "label": label, "samples": samples}
        for key in ["p50_us", "p99_us", "throughput", "errors"]:
            if samples and key in samples[0]:
                row[key] = summary(samples, key)
        row.update(extra)
        rows.append(row)
        shown = {k: round(row[k]["median"], 1) for k in ["p50_us", "p99_us", "throughput"] if k in row}
        print(f"{group:10} {label:44} {shown}", flush=True)

    everything = args.only is None
    # The floor.
    cnn = everything or args.only == "cnn"
    for model, path, runs in [("digits", FIXTURES / "digits_logreg.onnx", 20000), ("resnet50", RESNET, 40)] if everything else [("resnet50", RESNET, 40)] if cnn else []:
        for threads in [1, 2]:
            record("floor", f"{model} in-process Run, {threads} intra-op thread(s)",
                   repeat(args.repeats, lambda: run_tool(["floor", "--model", str(path), "--threads", str(threads), "--runs", str(runs)])),
                   model=model, threads=threads)

    reg = Registryd(work / "registryd", args.threads)
    # The same daemon with busy polling off (busy_poll_us 0), to show what polling buys and costs.
    # It idles while the others are measured.
    still = Registryd(work / "registryd-no-busy-poll", args.threads, {"busy_poll_us": 0}) if everything else None
    peer = Peer(work, args.threads)
    try:
        uds, tcp, peer_ep = ["--unix", reg.socket], ["--tcp", f"127.0.0.1:{reg.port}"], ["--tcp", f"127.0.0.1:{peer.port}"]
        uds_still = ["--unix", still.socket] if still else None
        target = "/v2/models/{}/infer"
        # The digits rows, repeats interleaved (every row once, then every row again...): a
        # drift of the shared machine then touches each row alike instead of whole rows, and the
        # ratios between rows, the peer's included, compare like with like.
        servers = [("registryd UDS JSON", uds, "json"), ("registryd UDS binary", uds, "binary"),
                   ("registryd TCP JSON", tcp, "json"), ("registryd TCP binary", tcp, "binary"),
                   ("registryd UDS JSON busy polling off", uds_still, "json"), ("peer TCP JSON", peer_ep, "json")]
        digits_rows = [(c, server) for c in ([1, 8, 64] if everything else []) for server in servers]
        digits_samples = [[] for _ in digits_rows]
        for _ in range(args.repeats):
            for i, (concurrency, (name, endpoint, kind)) in enumerate(digits_rows):
                digits_samples[i].append(load(endpoint, target.format("digits"), bodies["digits"][kind], concurrency, args.seconds, 1))
        for i, (concurrency, (name, endpoint, kind)) in enumerate(digits_rows):
            record("digits", f"{name}, concurrency {concurrency}", digits_samples[i],
                   model="digits", server=name.split()[0], transport=name.split()[1], encoding=kind, concurrency=concurrency)
        for name, endpoint, kind in [("registryd UDS binary", uds, "binary"), ("registryd UDS JSON", uds, "json"),
                                     ("registryd TCP binary", tcp, "binary"), ("peer TCP JSON", peer_ep, "json")] if cnn else []:
            record("resnet50", f"{name}, concurrency 1",
                   repeat(args.repeats, lambda: load(endpoint, target.format("resnet50"), bodies["resnet50"][kind], 1, args.cnn_seconds, 2)),
                   model="resnet50", server=name.split()[0], transport=name.split()[1], encoding=kind, concurrency=1)
        results["registryd_rss_mib_after_load"] = reg.rss_mib()

        # Shadow traffic: the client's latency with 0%, 20% (the example) and 100% of the
        # requests mirrored, at concurrency 1 and 8. Each repeat measures four arms back to back:
        # no shadow, 20%, no shadow again, 100%, in an order rotated from repeat to repeat so that
        # the machine's drift hits each alike. The second no-shadow arm is an A/A control: its
        # ratio to the first, repeat by repeat, is what the machine's noise alone does to a
        # ratio, and a shadow's ratio is "within noise" when it stays inside that spread.
        arms = ["none", 20, "none again", 100]
        for concurrency in [1, 8] if args.only != "cnn" else []:
            samples = {arm: [] for arm in arms}
            reports = {}
            for k in range(args.shadow_repeats):
                for arm in arms[k % 4:] + arms[:k % 4]:
                    if isinstance(arm, int):
                        control(reg.socket, "PUT", "/v1/models/digits/shadow", {"version": 2, "percent": arm, "reason": "benchmark"})
                    samples[arm].append(load(uds, target.format("digits"), bodies["digits"]["json"], concurrency, args.shadow_seconds, 1))
                    if isinstance(arm, int):
                        reports[arm] = control(reg.socket, "GET", "/v1/models/digits/shadow")[1]
                        control(reg.socket, "DELETE", "/v1/models/digits/shadow", {"reason": "benchmark"})
            base = [s["p50_us"] for s in samples["none"]]
            for arm in arms:
                ratios = [s["p50_us"] / b for s, b in zip(samples[arm], base)]
                record("shadow", f"registryd UDS JSON, concurrency {concurrency}, " + (f"shadow {arm}%" if isinstance(arm, int) else f"{arm}"),
                       samples[arm], model="digits", concurrency=concurrency, percent=arm if isinstance(arm, int) else 0, arm=str(arm),
                       paired_ratio={"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)})
                if isinstance(arm, int):
                    results[f"shadow_report_{arm}" + ("" if concurrency == 1 else f"_c{concurrency}")] = reports[arm]

        if everything:
            results["lifecycle"] = lifecycle_figures(reg, max(5, args.repeats))
            results["hot_swaps"] = swaps_under_load(reg, bodies, max(args.seconds, 5) * 2, 100)
        results["registryd_rss_mib_end"] = reg.rss_mib()
    finally:
        peer.stop()
        if still:
            still.stop()
        results["registryd_exit"] = reg.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"bench: results in {args.out}")
    if everything:
        subprocess.run([sys.executable, str(ROOT / "bench/report.py"), args.out], check=True)


if __name__ == "__main__":
    main()
