import Foundation
import FuzzDriver
import InferenceCodec
import Wire

// registryd-fuzz: the fuzz targets for the bytes that arrive over the network
// (scripts/fuzz; FuzzDriver says how it is built and run). It links Wire and InferenceCodec
// alone: no SQLite, no ONNX Runtime, no system call of the daemon.
//
//   http      Wire.HTTPRequestParser, fed whole and split in two at a point chosen by the input:
//             both must give the same requests and the same failure (a differential check).
//   v2        the KServe v2 request decoder, JSON (no header length) or Triton binary (a header
//             length taken from the input's first bytes); the decoded tensors are classified as
//             the request's outputs ask (Classification's invariants).
//
// Manifests and configuration files have their own executable (registryd-fuzz-registry).

enum FuzzTarget {
    /// Every outcome of parsing `chunks` in order, as text.
    static func outcomes(_ chunks: [ArraySlice<UInt8>]) -> [String] {
        var parser = HTTPRequestParser(limits: .init(maxHeadBytes: 1024, maxHeaderCount: 16, maxBodyBytes: 4096))
        var out: [String] = []
        for chunk in chunks {
            parser.append(Array(chunk))
            // Every complete request consumes at least one byte: the loop ends by needMore or a
            // failure well before this bound.
            loop: for _ in 0...(chunk.count + 2) {
                switch parser.next() {
                case .needMore: break loop
                case .continueExpected: out.append("100-continue")
                case .request(let r): out.append("\(r.method) \(r.target) \(r.headers.fields.count) headers \(r.body.count) bytes")
                case .failure(let f):
                    out.append("failure \(f)")
                    return out
                }
            }
        }
        return out
    }

    static func http(_ bytes: [UInt8]) {
        // "100 Continue" is due only while a body is still awaited, so it depends on how the
        // bytes arrive; everything else must not.
        let whole = outcomes([bytes[...]]).filter { $0 != "100-continue" }
        guard bytes.count > 1 else { return }
        let cut = Int(bytes[0]) % bytes.count
        let split = outcomes([bytes[..<cut], bytes[cut...]]).filter { $0 != "100-continue" }
        // Fed in two pieces, the parser may only lag (a request completes when its bytes are all
        // there); it must never answer differently.
        guard whole == split else {
            preconditionFailure("HTTP parser differs when the input is split at \(cut): \(whole) vs \(split)")
        }
    }

    static func v2(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        // A first byte 0x01 selects the binary form: the next byte sets the header length.
        let request: InferenceRequest?
        if first == 1, bytes.count > 2 {
            let length = (Int(bytes[1]) << 2) % bytes.count
            request = try? InferenceRequest.decode(Array(bytes.dropFirst(2)), headerLength: length)
        } else {
            request = try? InferenceRequest.decode(bytes, headerLength: nil)
        }
        guard let request else { return }
        // Each decoded tensor classified as each requested classification asks: the answer has
        // the promised shape, and every element is "<score>:<index>[:<label>]" with an index in range.
        let labels = ["a", "", "b:c"]
        for count in request.outputs?.compactMap(\.classification) ?? [] {
            for tensor in request.inputs.values {
                guard let classes = Classification.top(count, of: tensor, labels: labels) else {
                    precondition(!Classification.supports(tensor.elementType), "a \(tensor.elementType) tensor was not classified")
                    continue
                }
                precondition(classes.shape == Classification.shape(for: tensor.shape, count: count), "classification shape \(classes.shape) for \(tensor.shape)")
                let perRow = tensor.shape.count >= 2 ? tensor.shape.dropFirst().reduce(1, *) : (tensor.shape.first ?? 1)
                for text in (try? classes.strings()) ?? [] {
                    let fields = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                    precondition(fields.count >= 2 && Int(fields[1]).map { $0 >= 0 && $0 < perRow } == true, "classification element '\(text)'")
                }
            }
        }
    }
}

let driver = FuzzDriver(program: "registryd-fuzz", targets: ["http": FuzzTarget.http, "v2": FuzzTarget.v2])

#if FUZZING
/// SwiftPM links an executable target's main as `<target>_main`: hand control to libFuzzer.
@_cdecl("registryd_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    driver.fuzz(argc: argc, argv: argv)
}
#else
@main
struct Replay {
    static func main() { driver.replay(Array(CommandLine.arguments.dropFirst())) }
}
#endif
