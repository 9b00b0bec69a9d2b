#!/usr/bin/env python3
"""The two-stage pipeline benchmark (issue 17): the digits router, then a switch to the classifier
of the image's group, served by registryd as one pipeline version, against

  (a) the same two models served one by one by registryd: the sum of the router's and the
      classifier's own rows, and a client that makes the two requests itself (bench/chain.c:
      the router, then the classifier its answer names);
  (b) the reference peer doing the same two stages in Python (bench/peer/pipeline_app.py:
      FastAPI + uvicorn + onnxruntime, one worker), as backends do today;

at concurrency 1 and 8, with the in-process floor of both models (ONNX Runtime's `Run` from
Swift, `registryd-bench floor`) and registryd's own account of the pipeline from /metrics
(`registryd_pipeline_step_seconds` per step, `registryd_pipeline_overhead_seconds`).

Same load generator as bench/run.py (`registryd-bench load`), Unix socket for registryd and TCP
for the peer (uvicorn here serves TCP), plus registryd's pipeline on TCP for a like-for-like row.
Every row is measured once per repeat, repeats interleaved; every figure is the median of the
repeats with min and max, and every ratio is taken within a repeat, then its median (min-max).
It prints, writes bench/results/pipeline.json and rewrites BENCHMARKS.md between the pipeline
markers. It asserts nothing (the machine is shared and noisy).

    flock /tmp/swift-build.lock swift build -c release --product registryd
    flock /tmp/swift-build.lock swift build -c release --product registryd-bench
    bash bench/setup-peer.sh
    flock /tmp/swift-build.lock python3 bench/pipeline.py [--repeats 5] [--seconds 3] [--quick]
"""
import argparse, http.client, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the harness's helpers and load generator)

ROOT = bench.ROOT
FIXTURES = bench.FIXTURES
# Fixture -> the model name registryd serves it as (docs/PIPELINES.md's example).
MODELS = {"digits_router": "router", "digits_group0": "low", "digits_group1": "mid", "digits_group2": "high"}
CASES = {0: "low", 1: "mid", 2: "high"}
PIPELINE = {
    "description": "route a digit to the classifier of its group",
    "steps": [
        {"id": "router", "model": "router", "inputs": {"input": "$request.image"}},
        {"id": "classifier", "model": {"switch": "router.label", "cases": {str(k): v for k, v in CASES.items()}, "default": None},
         "inputs": {"input": "$request.image"}},
    ],
    "outputs": {"group": "router.label", "label": "classifier.label", "probabilities": "classifier.probabilities"},
}
MARK_START, MARK_END = "<!-- pipeline:start -->", "<!-- pipeline:end -->"


class Registryd:
    """registryd serving the four fixture models (with their manifests: raw UINT8 pixels through
    the preprocessing contract) and pipeline `grouped` version 1."""

    def __init__(self, work, threads):
        root = work / "models"
        for fixture, model in MODELS.items():
            d = root / model / "1"
            d.mkdir(parents=True)
            shutil.copyfile(FIXTURES / f"{fixture}.onnx", d / "model.onnx")
            shutil.copyfile(FIXTURES / f"{fixture}_manifest.json", d / "manifest.json")
        (root / "grouped" / "1").mkdir(parents=True)
        (root / "grouped" / "1" / "pipeline.json").write_text(json.dumps(PIPELINE, indent=1))
        self.socket = str(work / "registryd.sock")
        self.port = bench.free_port()
        config = work / "registry.d"
        (config / "models").mkdir(parents=True)
        (config / "registryd.json").write_text(json.dumps({
            "model_root": str(root), "database": str(work / "catalog.sqlite"), "control_socket": self.socket,
            "listen": f"127.0.0.1:{self.port}", "onnx_threads": threads, "log_level": "warning", "settle_seconds": 0.5}))
        self.log = open(work / "registryd.log", "w")
        self.process = subprocess.Popen([str(bench.REGISTRYD), "--config", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        bench.wait_until(lambda: bench.control(self.socket, "GET", "/v2/health/ready")[0] == 200, what="registryd ready")
        bench.wait_until(lambda: bench.control(self.socket, "GET", "/v2/models/grouped/ready")[0] == 200, what="pipeline 'grouped' ready")

    def infer(self, model, body):
        conn = bench.UnixHTTPConnection(self.socket)
        conn.request("POST", f"/v2/models/{model}/infer", body=body)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status != 200:
            raise SystemExit(f"pipeline: registryd answered {response.status} for {model}: {data[:300]!r}")
        return json.loads(data)

    def pipeline_sums(self):
        """The pipeline's cumulative step and overhead sums from /metrics: {name: (seconds, count)}."""
        conn = bench.UnixHTTPConnection(self.socket)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        sums = {}
        for line in text.splitlines():
            for family in ("registryd_pipeline_step_seconds", "registryd_pipeline_overhead_seconds"):
                if not line.startswith(family + "_") or 'model="grouped"' not in line:
                    continue
                name, value = line.rsplit(" ", 1)
                key = "overhead" if "overhead" in family else name.split('step="')[1].split('"')[0]
                seconds, count = sums.get(key, (0.0, 0))
                if name.startswith(family + "_sum"):
                    seconds = float(value)
                elif name.startswith(family + "_count"):
                    count = int(float(value))
                sums[key] = (seconds, count)
        return sums

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None


class Peer:
    def __init__(self, work, threads):
        self.port = bench.free_port()
        env = dict(os.environ, PEER_ROUTER=str(FIXTURES / "digits_router.onnx"),
                   PEER_GROUPS=",".join(str(FIXTURES / f"digits_group{g}.onnx") for g in range(3)), PEER_THREADS=str(threads))
        self.log = open(work / "peer.log", "w")
        self.process = subprocess.Popen([str(bench.PEER_PY), str(ROOT / "bench/peer/pipeline_app.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/v2/health/ready")
            return conn.getresponse().status == 200
        bench.wait_until(ready, what="the FastAPI pipeline peer")

    def infer(self, body, conn):
        conn.request("POST", "/v2/models/grouped/infer", body=body)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"pipeline: the peer answered {response.status}: {data[:300]!r}")
        return json.loads(data)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def body_for(row, name="image"):
    """A v2 JSON request for one image; `image` is the pipeline's input, `input` the models' own."""
    return json.dumps({"inputs": [{"name": name, "datatype": "UINT8", "shape": [1, 64], "data": row}]}).encode()


def output(answer, name):
    return next(o["data"] for o in answer["outputs"] if o["name"] == name)


def chain(endpoint, first, body, concurrency, seconds, warmup, binary, cases=None):
    args = [str(binary), *endpoint, "--first", first, "--body", str(body), "--concurrency", str(concurrency),
            "--seconds", str(seconds), "--warmup", str(warmup)]
    args += [a for value, target in (cases or {}).items() for a in ("--case", f"{value}={target}")] if cases else ["--single"]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pipeline: chain failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--image", type=int, default=0, help="which of the reference's 360 test images every request sends")
    parser.add_argument("--threads", type=int, default=2, help="registryd's onnx_threads (models under 16 MiB run on one thread regardless)")
    parser.add_argument("--floor-runs", type=int, default=20000)
    parser.add_argument("--out", default=str(ROOT / "bench/results/pipeline.json"))
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--quick", action="store_true", help="one short repeat: checks the harness (BENCHMARKS.md left alone)")
    parser.add_argument("--profile", type=float, metavar="SECONDS",
                        help="instead: `perf record -g` registryd for SECONDS under each of the pipeline and the router alone (Unix socket) "
                             "at each concurrency, and print CPU µs per request in the functions that matter (needs perf)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.floor_runs, args.no_write = 1, 1, 2000, True
    for path, how in [(bench.BENCH_BIN, "swift build -c release --product registryd-bench"), (bench.REGISTRYD, "swift build -c release --product registryd"),
                      (bench.PEER_PY, "bash bench/setup-peer.sh")]:
        if not path.exists():
            raise SystemExit(f"pipeline: {path} is missing: run `{how}` first")

    reference = json.loads((FIXTURES / "digits_pipeline_reference.json").read_text())
    row = reference["inputs"][args.image]
    group = reference["router"]["group"][args.image]
    classifier = CASES[group]
    expected_label = reference["router"]["label"][args.image]

    work = Path(tempfile.mkdtemp(prefix="registryd-pipeline-bench-"))
    chain_bin = work / "chain"
    subprocess.run(["cc", "-O2", "-o", str(chain_bin), str(ROOT / "bench/chain.c")], check=True)
    body = work / "image.json"
    body.write_bytes(body_for(row))
    model_body = work / "input.json"
    model_body.write_bytes(body_for(row, "input"))

    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeats": args.repeats, "seconds": args.seconds,
               "warmup": args.warmup, "image": args.image, "group": group, "classifier": classifier, "label": expected_label}

    if args.profile:
        return profile(args, work, body, model_body, classifier)
    reg = Registryd(work / "registryd", args.threads)
    peer = Peer(work, 1)
    try:
        # Both servers give the reference's answer for the benchmark's image, and the peer for all 360.
        answer = reg.infer("grouped", body.read_bytes())
        if output(answer, "label") != [expected_label] or output(answer, "group") != [group]:
            raise SystemExit(f"pipeline: registryd's answer differs from the reference: {answer}")
        conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=30)
        labels = [output(peer.infer(body_for(r), conn), "label")[0] for r in reference["inputs"]]
        if labels != reference["router"]["label"]:
            raise SystemExit("pipeline: the peer's labels differ from the reference's")
        conn.close()
        results["checked"] = "registryd's pipeline and the peer give the reference's group and label for the image; the peer gives the reference's 360 labels"

        uds, tcp, peer_tcp = ["--unix", reg.socket], ["--tcp", f"127.0.0.1:{reg.port}"], ["--tcp", f"127.0.0.1:{peer.port}"]
        target = "/v2/models/{}/infer"
        path_body, model_path_body = (body, []), (model_body, [])
        row_specs = [
            ("pipeline UDS", lambda c: bench.load(uds, target.format("grouped"), path_body, c, args.seconds, args.warmup), True),
            ("router alone UDS", lambda c: bench.load(uds, target.format("router"), model_path_body, c, args.seconds, args.warmup), False),
            (f"{classifier} alone UDS", lambda c: bench.load(uds, target.format(classifier), model_path_body, c, args.seconds, args.warmup), False),
            ("two requests UDS", lambda c: chain(uds, target.format("router"), model_body, c, args.seconds, args.warmup, chain_bin,
                                                 {k: target.format(v) for k, v in CASES.items()}), False),
            ("router alone UDS, chain client", lambda c: chain(uds, target.format("router"), model_body, c, args.seconds, args.warmup, chain_bin), False),
            ("pipeline TCP", lambda c: bench.load(tcp, target.format("grouped"), path_body, c, args.seconds, args.warmup), True),
            ("two requests TCP", lambda c: chain(tcp, target.format("router"), model_body, c, args.seconds, args.warmup, chain_bin,
                                                 {k: target.format(v) for k, v in CASES.items()}), False),
            ("peer pipeline TCP", lambda c: bench.load(peer_tcp, target.format("grouped"), path_body, c, args.seconds, args.warmup), False),
        ]
        floor_models = {"router": FIXTURES / "digits_router.onnx", classifier: FIXTURES / f"digits_group{group}.onnx"}
        samples = {(c, name): [] for c in args.concurrency for name, _, _ in row_specs}
        floors = {name: [] for name in floor_models}
        for r in range(args.repeats):
            # The floor, once a repeat: one intra-op thread, as registryd runs models under 16 MiB.
            for name, path in floor_models.items():
                floors[name].append(bench.run_tool(["floor", "--model", str(path), "--threads", "1", "--runs", str(args.floor_runs)]))
            for c in args.concurrency:
                for name, fn, metered in row_specs:
                    before = reg.pipeline_sums() if metered else None
                    result = fn(c)
                    if result["errors"]:
                        raise SystemExit(f"pipeline: {name} at concurrency {c}: {result['errors']} errors ({result.get('first_error')})")
                    if metered:
                        after = reg.pipeline_sums()
                        result["metrics_us"] = {key: (after[key][0] - before.get(key, (0, 0))[0]) * 1e6 / (after[key][1] - before.get(key, (0, 0))[1])
                                                for key in after if after[key][1] > before.get(key, (0, 0))[1]}
                    samples[(c, name)].append(result)
            print(f"pipeline: repeat {r + 1} of {args.repeats} done", file=sys.stderr, flush=True)
        results["rss_mib"] = None
        for line in Path(f"/proc/{reg.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                results["rss_mib"] = int(line.split()[1]) / 1024
    finally:
        peer.stop()
        results["registryd_exit"] = reg.stop()

    results["floors"] = {name: {"p50_us": summary([s["p50_us"] for s in v]), "p99_us": summary([s["p99_us"] for s in v]), "samples": v}
                         for name, v in floors.items()}
    results["rows"] = [{"concurrency": c, "label": name, "samples": samples[(c, name)],
                        **{k: summary([s[k] for s in samples[(c, name)]]) for k in ("p50_us", "p99_us", "throughput")}}
                       for c in args.concurrency for name, _, _ in row_specs]
    results["derived"] = derive(results, samples, floors, classifier, args.concurrency)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    text = report(results, classifier)
    print(text)
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        doc = path.read_text()
        if MARK_START in doc and MARK_END in doc:
            head, rest = doc.split(MARK_START, 1)
            path.write_text(head + MARK_START + "\n" + text + "\n" + MARK_END + rest.split(MARK_END, 1)[1])
            print(f"pipeline: BENCHMARKS.md rewritten between {MARK_START} and {MARK_END}")
        else:
            print("pipeline: BENCHMARKS.md has no pipeline markers; left alone")
    print(f"pipeline: results in {args.out}")


# Where a request's CPU time goes, by inclusive (children) samples: (label, substrings of the
# mangled Swift symbol, any of which matches; the largest match counts, since a protocol witness
# thunk and the function it calls both carry the callee's samples).
PROFILE_SYMBOLS = [
    ("registryd, all threads", None),
    ("HTTP serving (HTTPServer.serve)", ["HTTPServerC5serve"]),
    ("InferenceAPI.infer (decode, predict, encode)", ["InferenceAPIV5infer"]),
    ("request decode (InferenceRequest.decode)", ["RequestV6decode_12headerLength"]),
    ("PredictionService.predict", ["PredictionServiceV7predict"]),
    ("PipelineServable.predict", ["PipelineServableC7predict"]),
    ("PreprocessServable.predict (all steps)", ["PreprocessServableCAA0C0A2aDP7predict"]),
    ("ONNX Runtime Session.run (all steps)", ["7Runtime7SessionC3run"]),
    ("response encode (InferenceResponse.encode)", ["ResponseO6encode_7outputs"]),
    ("steps text (PredictionStep.json)", ["PredictionStepV4json"]),
    ("JSONText.quoted (anywhere)", ["JSONTextO6quoted"]),
    ("send(2)", ["__send"]),
]


def perf_report(data, requests, freq):
    """CPU µs per request in PROFILE_SYMBOLS, from a perf.data of cpu-clock samples at `freq` Hz."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--children", "-n", "--sort", "sym", "-q", "--stdio", "-g", "none"],
                         capture_output=True, text=True).stdout
    total, rows = 0, []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].endswith("%") and parts[1].endswith("%") and parts[2].isdigit():
            rows.append((float(parts[0][:-1]), int(parts[2]), parts[1], " ".join(parts[4:])))
    # -n's count is the symbol's own (self) samples; the sum of those is every sample.
    total = sum(r[1] for r in rows)
    per_request = lambda percent: total * percent / 100 / freq * 1e6 / requests
    figures = {}
    for label, needles in PROFILE_SYMBOLS:
        if needles is None:
            figures[label] = per_request(100)
        else:
            figures[label] = per_request(max([r[0] for r in rows if any(n in r[3] for n in needles)], default=0))
    return figures


def profile(args, work, body, model_body, classifier):
    freq = 4999
    reg = Registryd(work / "registryd", args.threads)
    target = "/v2/models/{}/infer"
    uds = ["--unix", reg.socket]

    def requests_total():
        conn = bench.UnixHTTPConnection(reg.socket)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("registryd_requests_total{"))

    report = {}
    try:
        for c in args.concurrency:
            for name, model, path in [("pipeline", "grouped", body), ("router alone", "router", model_body)]:
                bench.load(uds, target.format(model), (path, []), c, 1, 0)  # warm
                data = work / f"perf-{model}-c{c}.data"
                before = requests_total()
                recorder = subprocess.Popen(["perf", "record", "-F", str(freq), "-g", "-p", str(reg.process.pid), "-o", str(data)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                result = bench.load(uds, target.format(model), (path, []), c, args.profile, 0)
                recorder.send_signal(signal.SIGINT)
                recorder.wait(timeout=60)
                requests = requests_total() - before
                report[(name, c)] = (result, perf_report(data, requests, freq))
                print(f"pipeline: profiled {name} at concurrency {c}: {int(requests)} requests, p50 {result['p50_us']:.1f} µs under perf; {data}", file=sys.stderr)
    finally:
        reg.stop()
    keys = list(report)
    print("| CPU µs per request (perf, cpu-clock, inclusive) | " + " | ".join(f"{n}, c={c}" for n, c in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for label, _ in PROFILE_SYMBOLS:
        print(f"| {label} | " + " | ".join(f"{report[k][1][label]:.1f}" for k in keys) + " |")
    print("| p50 under perf (µs) | " + " | ".join(f"{report[k][0]['p50_us']:.1f}" for k in keys) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_name("pipeline-profile.json").write_text(json.dumps(
        [{"row": n, "concurrency": c, "load": r, "cpu_us_per_request": f} for (n, c), (r, f) in report.items()], indent=1))


def derive(results, samples, floors, classifier, concurrencies):
    """Per repeat, then median (min-max): the figures the section states."""
    floor_sum = [a["p50_us"] + b["p50_us"] for a, b in zip(floors["router"], floors[classifier])]
    out = {"floor_sum_p50_us": summary(floor_sum)}
    for c in concurrencies:
        s = {name: samples[(c, name)] for (cc, name) in samples if cc == c}
        pipe, router, alone = s["pipeline UDS"], s["router alone UDS"], s[f"{classifier} alone UDS"]
        n = len(pipe)
        d = {}
        d["sum_of_parts_p50_us"] = summary([router[i]["p50_us"] + alone[i]["p50_us"] for i in range(n)])
        # Two closed loops of c clients each: one operation of both costs 1/x_router + 1/x_alone seconds of the server.
        d["sum_of_parts_throughput"] = summary([1 / (1 / router[i]["throughput"] + 1 / alone[i]["throughput"]) for i in range(n)])
        d["pipeline_over_sum_p50"] = summary([pipe[i]["p50_us"] / (router[i]["p50_us"] + alone[i]["p50_us"]) for i in range(n)])
        d["pipeline_over_two_requests_p50"] = summary([pipe[i]["p50_us"] / s["two requests UDS"][i]["p50_us"] for i in range(n)])
        d["pipeline_over_two_requests_throughput"] = summary([pipe[i]["throughput"] / s["two requests UDS"][i]["throughput"] for i in range(n)])
        d["tcp_pipeline_over_two_requests_p50"] = summary([s["pipeline TCP"][i]["p50_us"] / s["two requests TCP"][i]["p50_us"] for i in range(n)])
        d["tcp_pipeline_over_peer_p50"] = summary([s["pipeline TCP"][i]["p50_us"] / s["peer pipeline TCP"][i]["p50_us"] for i in range(n)])
        d["tcp_pipeline_over_peer_throughput"] = summary([s["pipeline TCP"][i]["throughput"] / s["peer pipeline TCP"][i]["throughput"] for i in range(n)])
        d["chain_client_over_load_router_p50"] = summary([s["router alone UDS, chain client"][i]["p50_us"] / router[i]["p50_us"] for i in range(n)])
        # End to end: the pipeline's p50 less both models' in-process Run; and less the router served
        # alone (one request's whole cost) and the classifier's Run: what the second hop adds.
        d["pipeline_minus_floors_us"] = summary([pipe[i]["p50_us"] - floor_sum[i] for i in range(n)])
        d["pipeline_minus_router_request_minus_floor_us"] = summary([pipe[i]["p50_us"] - router[i]["p50_us"] - floors[classifier][i]["p50_us"] for i in range(n)])
        # registryd's own account, per request: each step's time and the pipeline's overhead.
        for key in ("router", "classifier", "overhead"):
            d[f"metrics_{key}_us"] = summary([p["metrics_us"][key] for p in pipe])
        for step, model in (("router", "router"), ("classifier", classifier)):
            d[f"metrics_{step}_minus_floor_us"] = summary([pipe[i]["metrics_us"][step] - floors[model][i]["p50_us"] for i in range(n)])
            # A hop: its step's time beyond its model's Run, plus half the pipeline's own overhead.
            d[f"hop_{step}_us"] = summary([pipe[i]["metrics_us"][step] - floors[model][i]["p50_us"] + pipe[i]["metrics_us"]["overhead"] / 2 for i in range(n)])
        tcp = s["pipeline TCP"]
        d["tcp_metrics_overhead_us"] = summary([p["metrics_us"]["overhead"] for p in tcp])
        out[f"c{c}"] = d
    return out


def fmt_us(v):
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def cell(s, unit=" µs", f=fmt_us):
    return f"{f(s['median'])}{unit} ({f(s['min'])}–{f(s['max'])})"


def ratio(s):
    return f"{s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


def report(results, classifier):
    lines = [f"Run of {results['started']} on {results['machine']['cpus']} CPUs (kernel {results['machine']['kernel']}): "
             f"{results['repeats']} interleaved repeats of {results['seconds']:g} s after {results['warmup']:g} s of warm-up; every figure "
             f"is the median of the repeats (min–max), every ratio the median of the per-repeat ratios. Image {results['image']} of the "
             f"reference (group {results['group']}, so the switch picks `{classifier}`; label {results['label']}), one row per request, v2 JSON, "
             f"raw UINT8 pixels. Checked first: {results['checked']}.", ""]
    fl = results["floors"]
    lines += ["| floor: ONNX Runtime `Run` in-process from Swift, 1 intra-op thread, batch 1 | p50 | p99 |", "|---|---|---|"]
    for name, f in fl.items():
        lines.append(f"| {name} (`{'digits_router' if name == 'router' else 'digits_group' + str(results['group'])}.onnx`) | {cell(f['p50_us'])} | {cell(f['p99_us'])} |")
    lines.append(f"| sum of both | {cell(results['derived']['floor_sum_p50_us'])} | |")
    lines += ["", "| row | concurrency | p50 | p99 | throughput (req/s; two requests: operations/s) |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['label']} | {row['concurrency']} | {cell(row['p50_us'])} | {cell(row['p99_us'])} | {cell(row['throughput'], '', lambda v: f'{v:,.0f}')} |")
    lines += ["", "| concurrency | pipeline / (router + classifier alone), p50 | pipeline / two requests, p50 | pipeline / two requests, throughput | "
              "TCP: pipeline / peer, p50 | TCP: pipeline / peer, throughput | chain client / registryd-bench, router alone, p50 |",
              "|---|---|---|---|---|---|---|"]
    for key, d in results["derived"].items():
        if not key.startswith("c"):
            continue
        lines.append(f"| {key[1:]} | {ratio(d['pipeline_over_sum_p50'])} | {ratio(d['pipeline_over_two_requests_p50'])} | {ratio(d['pipeline_over_two_requests_throughput'])} | "
                     f"{ratio(d['tcp_pipeline_over_peer_p50'])} | {ratio(d['tcp_pipeline_over_peer_throughput'])} | {ratio(d['chain_client_over_load_router_p50'])} |")
    lines += ["", "| concurrency | /metrics per request: router step | classifier step | pipeline overhead | router step − its floor | "
              "classifier step − its floor | hop = step − floor + overhead/2: router, classifier | pipeline p50 − both floors | "
              "pipeline p50 − router-alone p50 − classifier floor |", "|---|---|---|---|---|---|---|---|---|"]
    for key, d in results["derived"].items():
        if not key.startswith("c"):
            continue
        lines.append(f"| {key[1:]} | {cell(d['metrics_router_us'])} | {cell(d['metrics_classifier_us'])} | {cell(d['metrics_overhead_us'])} | "
                     f"{cell(d['metrics_router_minus_floor_us'])} | {cell(d['metrics_classifier_minus_floor_us'])} | "
                     f"{fmt_us(d['hop_router_us']['median'])} µs, {fmt_us(d['hop_classifier_us']['median'])} µs | {cell(d['pipeline_minus_floors_us'])} | "
                     f"{cell(d['pipeline_minus_router_request_minus_floor_us'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
