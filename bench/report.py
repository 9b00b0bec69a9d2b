#!/usr/bin/env python3
"""Writes the results of bench/run.py into BENCHMARKS.md, between the markers
`<!-- results:start -->` and `<!-- results:end -->` (the text around them is written by hand).

    bench/report.py bench/results/latest.json
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def fmt_us(v):
    return f"{v / 1000:.2f} ms" if v >= 10000 else f"{v:.0f} µs" if v >= 100 else f"{v:.1f} µs"


def spread(row, key, f=fmt_us):
    s = row[key]
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def main():
    results = json.loads(Path(sys.argv[1]).read_text())
    rows = results["rows"]
    threads = results["threads"]
    floor = {(r["model"], r["threads"]): r for r in rows if r["group"] == "floor"}
    peer = {(r["model"], r["concurrency"]): r for r in rows if r.get("server") == "peer"}
    out = []
    out.append(f"Run of {results['started']} on {results['machine']['cpus']} CPUs (kernel {results['machine']['kernel']}); "
               f"every figure is the median of {results['repeats']} runs (min–max in brackets), {results['seconds']} s each after 1 s of "
               f"warm-up (ResNet-50: longer). registryd and the peer use {threads} intra-op threads. Ratios compare medians from this same run.\n")

    out.append("### The floor: ONNX Runtime's `Run` called in-process from Swift (batch 1)\n")
    out.append("| model | intra-op threads | p50 | p99 |")
    out.append("|---|---|---|---|")
    for (model, t), r in sorted(floor.items()):
        out.append(f"| {model} | {t} | {spread(r, 'p50_us')} | {spread(r, 'p99_us')} |")
    out.append("")

    for model in ["digits", "resnet50"]:
        f = floor.get((model, threads))
        title = "digits classifier (input [1,64] FP32)" if model == "digits" else "ResNet-50 (light_resnet50 from the onnx package, input [1,3,224,224] FP32)"
        out.append(f"### {title}\n")
        out.append(f"Floor: {fmt_us(f['p50_us']['median'])} p50 at {threads} threads. Peer: FastAPI + uvicorn + onnxruntime, one worker, JSON over TCP.\n")
        out.append("| server, transport, body | concurrency | p50 | p99 | throughput (req/s) | errors | p50 − floor | p50 / floor | p50 / peer | throughput / peer |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["group"] != model:
                continue
            p = peer.get((model, r["concurrency"]))
            p50 = r["p50_us"]["median"]
            ratio_peer = f"{p50 / p['p50_us']['median']:.3f}" if p else "–"
            tput_peer = f"{r['throughput']['median'] / p['throughput']['median']:.2f}×" if p else "–"
            errors = sum(s["errors"] for s in r["samples"])
            out.append(f"| {r['label'].rsplit(',', 1)[0]} | {r['concurrency']} | {spread(r, 'p50_us')} | {spread(r, 'p99_us')} | "
                       f"{r['throughput']['median']:.0f} ({r['throughput']['min']:.0f}–{r['throughput']['max']:.0f}) | {errors} | "
                       f"{fmt_us(p50 - f['p50_us']['median'])} | {p50 / f['p50_us']['median']:.2f} | {ratio_peer} | {tput_peer} |")
        out.append("")

    shadow = [r for r in rows if r["group"] == "shadow"]
    if shadow:
        n = len(shadow[0]["samples"])
        out.append(f"### Shadow traffic (digits, Unix socket, JSON; mirrored to version 2)\n")
        out.append(f"{n} repeats of four arms measured back to back (no shadow, 20%, no shadow again, 100%; the order rotated "
                   f"each repeat), {results.get('shadow_seconds', 2)} s each. The paired ratio divides each arm's p50 by the "
                   "no-shadow p50 of the same repeat; the second no-shadow arm (A/A) shows what the machine's noise alone does "
                   "to that ratio.\n")
        out.append("| concurrency | arm | p50 | p99 | throughput | paired p50 ratio to no shadow, median (min–max) | mirrored, dropped, failed |")
        out.append("|---|---|---|---|---|---|---|")
        for concurrency in sorted({r.get("concurrency", 1) for r in shadow}):
            for r in [r for r in shadow if r.get("concurrency", 1) == concurrency]:
                suffix = "" if concurrency == 1 else f"_c{concurrency}"
                rep = results.get(f"shadow_report_{r.get('percent')}{suffix}", {}) if r.get("percent") else {}
                counts = f"{rep.get('mirrored')}, {rep.get('dropped')}, {rep.get('failed')}" if rep else "–"
                arm = r.get("arm", str(r.get("percent")))
                pr = r.get("paired_ratio")
                ratio = f"{pr['median']:.3f} ({pr['min']:.3f}–{pr['max']:.3f})" if pr else "–"
                out.append(f"| {concurrency} | {arm + '%' if arm.isdigit() else arm} | {spread(r, 'p50_us')} | {spread(r, 'p99_us')} | "
                           f"{r['throughput']['median']:.0f} | {ratio} | {counts} |")
        out.append("")

    life = results.get("lifecycle", {})
    swaps = results.get("hot_swaps", {})
    out.append("### Lifecycle\n")
    out.append("| figure | median | min–max |")
    out.append("|---|---|---|")
    if "rename_to_served_ms" in life:
        r = life["rename_to_served_ms"]
        load = f" (of which load and warm-up: {r['load_ms_median']:.1f} ms median)" if r.get("load_ms_median") is not None else ""
        out.append(f"| atomic rename → first request served by the new version{load} | {r['median']:.1f} ms | {r['min']:.1f}–{r['max']:.1f} ms |")
    if "rollback_ms" in life:
        r = life["rollback_ms"]
        out.append(f"| rollback command → first request on the old version (daemon-side {r['daemon_ms_median']:.2f} ms) | {r['median']:.2f} ms | {r['min']:.2f}–{r['max']:.2f} ms |")
    if swaps:
        w, b = swaps["with"], swaps["without"]
        out.append(f"| failed requests during {swaps['swaps']} hot swaps under load (8 connections) | {w['errors']} of {w['requests']} | without swaps: {b['errors']} of {b['requests']} |")
        out.append(f"| p99 with {swaps['swaps']} swaps / p99 without | {w['p99_us'] / b['p99_us']:.2f} | {fmt_us(w['p99_us'])} vs {fmt_us(b['p99_us'])} |")
    out.append("")
    out.append(f"registryd's resident memory: {results.get('registryd_rss_mib_after_load', 0):.0f} MiB after the serving runs, "
               f"{results.get('registryd_rss_mib_end', 0):.0f} MiB at the end (after the lifecycle runs added digits versions); "
               f"exit status on SIGTERM: {results.get('registryd_exit')}.\n")

    text = "\n".join(out)
    doc = ROOT / "BENCHMARKS.md"
    current = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + START + "\n" + text + "\n" + END + tail)
    print(f"report: wrote {doc}")


if __name__ == "__main__":
    main()
