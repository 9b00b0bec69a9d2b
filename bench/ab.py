#!/usr/bin/env python3
"""An interleaved A/B of two registryd builds: the digits model on the Unix socket, JSON and
binary tensors, at concurrency 1 (p50 latency) and 64 (throughput), both daemons running side
by side and measured in turn (the order flips every repeat), so that the shared machine's
drift touches both alike. Reports each build's median with min and max, and the median of the
per-repeat ratios after/before. It asserts nothing.

    python3 bench/ab.py --before /tmp/before/registryd [--after .build/release/registryd] [--repeats 7] [--seconds 3]
"""
import argparse, json, statistics, sys, tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the harness's processes and load generator)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the registryd binary to compare against")
    parser.add_argument("--after", default=str(bench.REGISTRYD))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 64], help="which concurrency rows to run")
    parser.add_argument("--out", default=str(bench.ROOT / "bench/results/ab.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rgd-ab-") as tmp:
        work = Path(tmp)
        bodies = bench.write_bodies(work)
        daemons = {}
        for name, binary in [("before", args.before), ("after", args.after)]:
            bench.REGISTRYD = Path(binary)
            (work / name).mkdir()
            daemons[name] = bench.Registryd(work / name, 2)
        rows = [(c, fmt) for c in args.concurrency for fmt in ("json", "binary")]
        samples = {(name, c, fmt): [] for name in daemons for c, fmt in rows}
        try:
            for r in range(args.repeats):
                for c, fmt in rows:
                    order = ["before", "after"] if (r + c) % 2 == 0 else ["after", "before"]
                    for name in order:
                        result = bench.load(["--unix", daemons[name].socket], "/v2/models/digits/infer", bodies["digits"][fmt], c, args.seconds, 1)
                        if result["errors"]:
                            raise SystemExit(f"ab: {name} answered {result['errors']} errors")
                        samples[(name, c, fmt)].append(result)
                print(f"ab: repeat {r + 1} of {args.repeats} done", file=sys.stderr)
        finally:
            for d in daemons.values():
                d.stop()
    report = {"repeats": args.repeats, "seconds": args.seconds, "rows": []}
    for c, fmt in [(c, fmt) for c in args.concurrency for fmt in ("json", "binary")]:
        key = "p50_us" if c == 1 else "throughput"
        before = [s[key] for s in samples[("before", c, fmt)]]
        after = [s[key] for s in samples[("after", c, fmt)]]
        ratios = [a / b for a, b in zip(after, before)]
        report["rows"].append({
            "concurrency": c, "format": fmt, "metric": key,
            "before": {"median": statistics.median(before), "min": min(before), "max": max(before)},
            "after": {"median": statistics.median(after), "min": min(after), "max": max(after)},
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"| digits, Unix socket | metric | before (median, min-max) | after (median, min-max) | after/before (median of paired ratios, min-max) |")
    print("|---|---|---|---|---|")
    for row in report["rows"]:
        unit = "µs p50" if row["metric"] == "p50_us" else "req/s"
        b, a = row["before"], row["after"]
        print(f"| c={row['concurrency']} {row['format']} | {unit} | {b['median']:.1f} ({b['min']:.1f}-{b['max']:.1f}) | "
              f"{a['median']:.1f} ({a['min']:.1f}-{a['max']:.1f}) | {row['ratio_median']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f}) |")


if __name__ == "__main__":
    main()
