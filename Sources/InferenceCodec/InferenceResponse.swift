import Tensors
import Wire

/// The v2 response of an inference: JSON, then Triton's binary tensor data for the outputs asked
/// for in binary (`Inference-Header-Content-Length` says where the JSON ends).
public enum InferenceResponse {
    /// The parts of every response of one version that never change, as bytes, made once per
    /// version: `{"model_name":…,"model_version":"N"` and `,"parameters":{"sha256":"…","routing":`.
    public struct Preamble: Sendable {
        let opening: [UInt8]
        let parameters: [UInt8]

        public init(model: String, version: Int, sha256: String) {
            opening = Array("{\"model_name\":\(JSONText.quoted(model)),\"model_version\":\"\(version)\"".utf8)
            parameters = Array(",\"parameters\":{\"sha256\":\(JSONText.quoted(sha256)),\"routing\":".utf8)
        }
    }

    /// The response to `request`: the outputs it named, in its order, or else every output in
    /// `order` (the servable's own); `routing` says how the request reached the version.
    /// `parameters` adds parameters after `routing`, each value already JSON text (a pipeline's
    /// `steps`, a string made once and written as it is).
    public static func encode(_ request: InferenceRequest, outputs: [String: Tensor], order: [String], preamble: Preamble, routing: String,
                              parameters: [(String, [UInt8])] = []) -> HTTPResponse {
        let names = request.outputs?.map(\.name) ?? order
        var head = ByteWriter()
        head.append(preamble.opening)
        if let id = request.id {
            head.append(",\"id\":")
            head.append(JSONText.quoted(id))
        }
        head.append(preamble.parameters)
        head.append(JSONText.quoted(routing))
        for (key, value) in parameters {
            head.append(",")
            head.append(JSONText.quoted(key))
            head.append(":")
            head.append(value)
        }
        head.append("},\"outputs\":[")
        var binary: [UInt8] = []
        var written = 0
        for name in names {
            guard let tensor = outputs[name] else { continue }
            let wantsBinary = request.outputs?.first { $0.name == name }?.binary ?? request.binaryOutputDefault
            if written > 0 { head.append(",") }
            written += 1
            head.append("{\"name\":")
            head.append(JSONText.quoted(name))
            head.append(",\"datatype\":\"")
            head.append(DataType(tensor.elementType).rawValue)
            head.append("\",\"shape\":[")
            for (i, dimension) in tensor.shape.enumerated() {
                if i > 0 { head.bytes.append(UInt8(ascii: ",")) }
                JSONText.appendInteger(dimension, to: &head.bytes)
            }
            head.append("]")
            if wantsBinary {
                let before = binary.count
                TensorText.appendBinary(tensor, to: &binary)
                head.append(",\"parameters\":{\"binary_data_size\":\(binary.count - before)}}")
            } else {
                head.append(",\"data\":")
                TensorText.appendJSON(tensor, to: &head)
                head.append("}")
            }
        }
        head.append("]}")
        if binary.isEmpty {
            return HTTPResponse.json(200, head.bytes)
        }
        var response = HTTPResponse(status: 200, headers: HTTPHeaders([
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", String(head.bytes.count)),
        ]))
        response.body = head.bytes + binary
        return response
    }
}

/// A growable byte buffer for building responses without intermediate strings.
struct ByteWriter {
    var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(512)
    }

    mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func append(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }
}

/// Tensor contents as v2 JSON `data` (flat, row-major) or as Triton binary data.
enum TensorText {
    static func appendJSON(_ tensor: Tensor, to writer: inout ByteWriter) {
        writer.bytes.append(UInt8(ascii: "["))
        func list<T>(_ values: [T], _ format: (T) -> String) {
            for (i, v) in values.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                writer.append(format(v))
            }
        }
        // `description`, not interpolation: a short number stays a small (inline) String.
        func float(_ v: Double) -> String { v.isFinite ? v.description : "null" }
        func integers<T: BinaryInteger>(_ values: [T]) {
            for (i, v) in values.enumerated() {
                if i > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                JSONText.appendInteger(v, to: &writer.bytes)
            }
        }
        do {
            switch tensor.elementType {
            case .float: list(try tensor.scalars(as: Float.self)) { $0.isFinite ? $0.description : "null" }
            case .double: list(try tensor.scalars(as: Double.self), float)
            case .float16: list(try tensor.scalars(as: Float16.self)) { float(Double($0)) }
            case .bfloat16: list(try tensor.scalars(as: BFloat16.self)) { float(Double($0.floatValue)) }
            case .int8: integers(try tensor.scalars(as: Int8.self))
            case .int16: integers(try tensor.scalars(as: Int16.self))
            case .int32: integers(try tensor.scalars(as: Int32.self))
            case .int64: integers(try tensor.scalars(as: Int64.self))
            case .uint8: integers(try tensor.scalars(as: UInt8.self))
            case .uint16: integers(try tensor.scalars(as: UInt16.self))
            case .uint32: integers(try tensor.scalars(as: UInt32.self))
            case .uint64: integers(try tensor.scalars(as: UInt64.self))
            case .bool: list(try tensor.scalars(as: Bool.self)) { $0 ? "true" : "false" }
            case .string: list(try tensor.byteStrings()) { JSONText.quoted(String(decoding: $0, as: UTF8.self)) }
            }
        } catch {
            // The element type was matched above, so reading cannot fail.
            preconditionFailure("tensor of \(tensor.elementType) could not be read as itself: \(error)")
        }
        writer.bytes.append(UInt8(ascii: "]"))
    }

    static func appendBinary(_ tensor: Tensor, to out: inout [UInt8]) {
        if tensor.elementType == .string {
            for element in (try? tensor.byteStrings()) ?? [] {
                let n = UInt32(element.count)
                out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)])
                out.append(contentsOf: element)
            }
            return
        }
        _ = try? tensor.withUnsafeBytes { out.append(contentsOf: $0) }
    }
}
