#!/usr/bin/env python3
"""HTTPS against plain TCP, interleaved in one run: two registryd daemons of the same build side
by side, one with its TCP listener in plain HTTP and one in HTTPS (an EC P-256 certificate from a
CA made here with the openssl command), measured in turn (the order flips every repeat) so that
the shared machine's drift touches both alike.

Rows: digits over keep-alive connections (JSON body) at concurrency 1, 8 and 64: throughput and
p50, each build's median with min and max, and the median of the per-repeat ratios HTTPS/plain.
Then new connections per second (connect, one GET, close) over plain TCP, over TLS with a full
handshake each time, and over TLS resuming the previous connection's session (a TLS 1.3 ticket).
It asserts nothing.

    python3 bench/tls.py [--registryd .build/release/registryd] [--repeats 5] [--seconds 3]
"""
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the harness's processes and load generator)


def make_pki(directory):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=bench CA",
            "-days", "2", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "server.ext", "-out", "server.pem")
    (directory / "server.key").chmod(0o600)
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def connect_rate(port, ca, resume, concurrency, seconds):
    args = ["connect", "--tcp", f"127.0.0.1:{port}", "--concurrency", str(concurrency), "--seconds", str(seconds), "--warmup", "1"]
    if ca:
        args += ["--tls-ca", str(ca)]
    if resume:
        args += ["--resume", "yes"]
    return bench.run_tool(args)


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registryd", default=str(bench.REGISTRYD))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--connect-concurrency", type=int, default=4)
    parser.add_argument("--out", default=str(bench.ROOT / "bench/results/tls.json"))
    args = parser.parse_args()
    bench.REGISTRYD = Path(args.registryd)
    levels = [1, 8, 64]
    with tempfile.TemporaryDirectory(prefix="rgd-tls-") as tmp:
        work = Path(tmp)
        bodies = bench.write_bodies(work)
        (work / "pki").mkdir()
        ca, certificate, key = make_pki(work / "pki")
        daemons = {}
        for name, extra in [("plain", {}), ("https", {"tls_certificate": str(certificate), "tls_private_key": str(key)})]:
            (work / name).mkdir()
            daemons[name] = bench.Registryd(work / name, 2, extra)
        keepalive = {(name, c): [] for name in daemons for c in levels}
        connects = {kind: [] for kind in ("plain", "full", "resumed")}
        try:
            for r in range(args.repeats):
                for c in levels:
                    order = ["plain", "https"] if (r + c) % 2 == 0 else ["https", "plain"]
                    for name in order:
                        endpoint = ["--tcp", f"127.0.0.1:{daemons[name].port}"] + (["--tls-ca", str(ca)] if name == "https" else [])
                        result = bench.load(endpoint, "/v2/models/digits/infer", bodies["digits"]["json"], c, args.seconds, 1)
                        if result["errors"]:
                            raise SystemExit(f"tls bench: {name} answered {result['errors']} errors: {result.get('first_error')}")
                        keepalive[(name, c)].append(result)
                kinds = [("plain", daemons["plain"].port, None, False), ("full", daemons["https"].port, ca, False),
                         ("resumed", daemons["https"].port, ca, True)]
                for kind, port, authority, resume in (kinds if r % 2 == 0 else kinds[::-1]):
                    result = connect_rate(port, authority, resume, args.connect_concurrency, args.seconds)
                    if result["errors"]:
                        raise SystemExit(f"tls bench: {kind} connections: {result['errors']} errors: {result.get('first_error')}")
                    if resume and result["resumed"] != result["connections"]:
                        raise SystemExit(f"tls bench: only {result['resumed']} of {result['connections']} handshakes resumed")
                    connects[kind].append(result)
                print(f"tls bench: repeat {r + 1} of {args.repeats} done", file=sys.stderr)
        finally:
            for d in daemons.values():
                d.stop()
    report = {"repeats": args.repeats, "seconds": args.seconds, "keepalive": [], "connections": {}}
    for c in levels:
        row = {"concurrency": c}
        for metric in ("throughput", "p50_us"):
            plain = [s[metric] for s in keepalive[("plain", c)]]
            https = [s[metric] for s in keepalive[("https", c)]]
            ratios = [h / p for h, p in zip(https, plain)]
            row[metric] = {"plain": spread(plain), "https": spread(https), "ratio": spread(ratios)}
        report["keepalive"].append(row)
    for kind, samples in connects.items():
        report["connections"][kind] = {"rate": spread([s["rate"] for s in samples]), "p50_us": spread([s["p50_us"] for s in samples])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))

    def cell(s, fmt="{:.0f}"):
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"
    print("| digits JSON, TCP keep-alive | plain req/s | HTTPS req/s | HTTPS/plain | plain p50 µs | HTTPS p50 µs | HTTPS/plain |")
    print("|---|---|---|---|---|---|---|")
    for row in report["keepalive"]:
        t, p = row["throughput"], row["p50_us"]
        print(f"| c={row['concurrency']} | {cell(t['plain'])} | {cell(t['https'])} | {cell(t['ratio'], '{:.3f}')} | "
              f"{cell(p['plain'])} | {cell(p['https'])} | {cell(p['ratio'], '{:.3f}')} |")
    print()
    print(f"| new connections, {args.connect_concurrency} clients, one GET each | connections/s | p50 µs per connection |")
    print("|---|---|---|")
    for kind, label in [("plain", "plain TCP"), ("full", "TLS 1.3, full handshake"), ("resumed", "TLS 1.3, resumed (ticket)")]:
        figures = report["connections"][kind]
        print(f"| {label} | {cell(figures['rate'])} | {cell(figures['p50_us'])} |")


if __name__ == "__main__":
    main()
