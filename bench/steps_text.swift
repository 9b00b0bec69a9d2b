// What the `steps` provenance text of a pipeline's response costs, timed alone: a copy of
// PredictionStep.json (Sources/Registry/Serving/Servable.swift) and JSONText.quoted
// (Sources/Wire/HTTPResponse.swift) as of commit 4baeb1d, with the two-step answer of
// bench/pipeline.py's image, quoted a second time as InferenceResponse.encode quotes the
// parameter; then a byte writer with per-version fragments, for what it could cost. A copy,
// not the daemon's code: if those functions change, this file says nothing about them. It backs
// the profile in BENCHMARKS.md ("The two-stage pipeline"), which measured the same code in the
// daemon under perf.
//
//   swiftc -O -o /tmp/steps_text bench/steps_text.swift && flock /tmp/swift-build.lock /tmp/steps_text
import Foundation
enum JSONText {
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
struct Step { var step: String; var model: String; var version: Int; var sha256: String; var routing: String; var rows: Int }
func json(_ steps: [Step]) -> String {
    "[" + steps.map { step in
        "{\"step\":\(JSONText.quoted(step.step)),\"model\":\(JSONText.quoted(step.model)),\"version\":\(step.version),"
            + "\"sha256\":\(JSONText.quoted(step.sha256)),\"routing\":\(JSONText.quoted(step.routing)),\"rows\":\(step.rows)}"
    }.joined(separator: ",") + "]"
}
let steps = [Step(step: "router", model: "router", version: 1, sha256: "e81fc16468976bd5417a5e33137d329a87f190004b1a1007afa797e61b6b6561", routing: "production", rows: 1),
             Step(step: "classifier", model: "high", version: 1, sha256: "c3687e50bb8e2b66d67f46df72b21ee9019bbfc1965bcf0b2ae2b39962ec6444", routing: "production", rows: 1)]
var sink = 0
func time(_ label: String, _ n: Int, _ body: () -> Int) {
    for _ in 0..<n / 10 { sink &+= body() }
    var samples: [Double] = []
    for _ in 0..<5 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n { sink &+= body() }
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(n) / 1000)
    }
    samples.sort()
    print(label, String(format: "%.2f µs median of 5 (min %.2f, max %.2f)", samples[2], samples[0], samples[4]))
}
time("PredictionStep.json (2 steps):", 100_000) { json(steps).utf8.count }
let text = json(steps)
print("steps text:", text.utf8.count, "bytes; quoted:", JSONText.quoted(text).utf8.count, "bytes")
time("JSONText.quoted(steps text):", 100_000) { JSONText.quoted(text).utf8.count }
time("both, as a request does:", 100_000) { JSONText.quoted(json(steps)).utf8.count }
// What a byte-level writer could cost: each step's fixed part escaped once (per version, as the
// response Preamble is), per request only the row count and the joins.
func escapedForString(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    for b in s.utf8 { if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }; out.append(b) }
    return out
}
let fixed = steps.map { escapedForString("{\"step\":\"\($0.step)\",\"model\":\"\($0.model)\",\"version\":\($0.version),\"sha256\":\"\($0.sha256)\",\"routing\":\"\($0.routing)\",\"rows\":") }
time("byte writer with per-version fragments:", 1_000_000) {
    var out: [UInt8] = []
    out.reserveCapacity(512)
    out.append(contentsOf: ",\"steps\":\"[".utf8)
    for (i, f) in fixed.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: f)
        var rows = steps[i].rows
        var digits: [UInt8] = []
        repeat { digits.append(UInt8(ascii: "0") + UInt8(rows % 10)); rows /= 10 } while rows > 0
        out.append(contentsOf: digits.reversed())
        out.append(UInt8(ascii: "}"))
    }
    out.append(contentsOf: "]\"".utf8)
    return out.count
}
print(sink == 42 ? "" : "", terminator: "")  // keeps the results alive
