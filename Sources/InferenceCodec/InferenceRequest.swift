import Tensors
import Wire

/// A decoded KServe v2 inference request (JSON, or JSON plus Triton's binary tensor data).
///
/// Decoding is bounded by the body: tensor buffers are sized from the declared shape only after
/// checking the body can hold that many elements, so a small request cannot make the daemon
/// allocate a huge buffer.
public struct InferenceRequest: Sendable {
    public var id: String?
    var parameters: JSONValue?
    public var inputs: [String: Tensor] = [:]
    public var outputs: [RequestedOutput]?
    /// `parameters.binary_data_output`: the default for outputs not requested by name.
    public var binaryOutputDefault = false
    /// `parameters.routing_key`.
    public var routingKey: String?

    public struct Failure: Error, Sendable {
        public var message: String
    }

    private struct PendingInput {
        var name: String?
        var shape: [Int]?
        var datatype: DataType?
        var data: Range<Int>?
        /// `data`, decoded as it was met (when name, datatype and shape came before it), or why
        /// it could not be.
        var tensor: Result<Tensor, Failure>?
        var binarySize: Int?
    }

    /// Decodes `body`; `headerLength` is the `Inference-Header-Content-Length` value when binary
    /// tensor data follows the JSON.
    public static func decode(_ body: [UInt8], headerLength: Int?) throws(Failure) -> InferenceRequest {
        if let headerLength, headerLength < 0 || headerLength > body.count {
            throw Failure(message: "Inference-Header-Content-Length \(headerLength) is outside the body of \(body.count) bytes")
        }
        let jsonEnd = headerLength ?? body.count
        let result: Result<InferenceRequest, Failure> = body.withUnsafeBytes { raw in
            do throws(Failure) {
                return .success(try decode(raw, jsonEnd: jsonEnd, binary: headerLength != nil))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, jsonEnd: Int, binary: Bool) throws(Failure) -> InferenceRequest {
        var request = InferenceRequest()
        var pending: [PendingInput] = []
        var scanner = JSONScanner(raw, to: jsonEnd)
        do throws(JSONScanner.Failure) {
            guard scanner.peek() == UInt8(ascii: "{") else { throw scanner.failure("the request must be a JSON object") }
            try scanner.object { (s: inout JSONScanner, key: String) throws(JSONScanner.Failure) in
                switch key {
                case "id":
                    request.id = try s.string()
                case "parameters":
                    let value = try s.value()
                    guard case .object = value else { throw s.failure("'parameters' must be an object") }
                    request.parameters = value
                case "inputs":
                    try s.array { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                        pending.append(try parseInput(&s))
                    }
                case "outputs":
                    var outputs: [RequestedOutput] = []
                    try s.array { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                        let output = try RequestedOutput.parse(&s)
                        guard !outputs.contains(where: { $0.name == output.name }) else {
                            throw s.failure("output '\(output.name)' is requested twice")
                        }
                        outputs.append(output)
                    }
                    request.outputs = outputs
                default:
                    throw s.failure("unknown key '\(key)' in the inference request")
                }
            }
            guard scanner.peek() == nil else { throw scanner.failure("unexpected bytes after the JSON object") }
        } catch {
            throw Failure(message: "invalid inference request: \(error.message)")
        }
        if case .bool(let flag)? = request.parameters?["binary_data_output"] { request.binaryOutputDefault = flag }
        if case .string(let key)? = request.parameters?["routing_key"] { request.routingKey = key }
        guard !pending.isEmpty else { throw Failure(message: "the request has no inputs") }

        var binaryOffset = jsonEnd
        for input in pending {
            guard let name = input.name else { throw Failure(message: "an input has no 'name'") }
            guard request.inputs[name] == nil else { throw Failure(message: "input '\(name)' is given twice") }
            guard let shape = input.shape else { throw Failure(message: "input '\(name)' has no 'shape'") }
            guard let datatype = input.datatype else { throw Failure(message: "input '\(name)' has no 'datatype'") }
            let count: Int
            do { count = try Tensor.elementCount(of: shape) } catch { throw Failure(message: "input '\(name)': \(error.message)") }
            let tensor: Tensor
            switch (input.tensor, input.binarySize) {
            case (.success, .some), (.failure, .some):
                throw Failure(message: "input '\(name)' has both 'data' and parameters.binary_data_size")
            case (.success(let decoded), nil):
                request.inputs[name] = decoded
                continue
            case (.failure(let error), nil):
                throw error
            case (nil, _):
                break
            }
            switch (input.data, input.binarySize) {
            case (nil, nil):
                throw Failure(message: "input '\(name)' has neither 'data' nor parameters.binary_data_size")
            case (.some, .some):
                throw Failure(message: "input '\(name)' has both 'data' and parameters.binary_data_size")
            case (let range?, nil):
                tensor = try decodeJSONData(raw, range, name: name, datatype: datatype, shape: shape, count: count)
            case (nil, let size?):
                guard binary else { throw Failure(message: "input '\(name)' uses binary_data_size but the request has no Inference-Header-Content-Length") }
                guard size >= 0, size <= raw.count - binaryOffset else {
                    throw Failure(message: "input '\(name)': binary_data_size \(size) runs past the end of the body")
                }
                tensor = try decodeBinary(UnsafeRawBufferPointer(rebasing: raw[binaryOffset..<binaryOffset + size]), name: name,
                                          datatype: datatype, shape: shape, count: count)
                binaryOffset += size
            }
            request.inputs[name] = tensor
        }
        if binaryOffset != raw.count {
            throw Failure(message: "the body has \(raw.count - binaryOffset) bytes beyond the JSON header and the inputs' binary_data_size")
        }
        return request
    }

    private static func parseInput(_ s: inout JSONScanner) throws(JSONScanner.Failure) -> PendingInput {
        var input = PendingInput()
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.Failure) in
            switch key {
            case "name":
                input.name = try s.string()
            case "datatype":
                let text = try s.string()
                guard let datatype = DataType(rawValue: text) else {
                    throw s.failure("unknown datatype '\(text)' (expected one of \(DataType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                input.datatype = datatype
            case "shape":
                var shape: [Int] = []
                try s.array { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                    let dimension = try s.int64()
                    guard dimension >= 0, dimension <= Int64(Int32.max) else { throw s.failure("shape dimensions must be 0...\(Int32.max)") }
                    guard shape.count < 16 else { throw s.failure("shape has more than 16 dimensions") }
                    shape.append(Int(dimension))
                }
                input.shape = shape
            case "parameters":
                let value = try s.value()
                if let size = value["binary_data_size"] {
                    guard case .number(let n, true) = size, n >= 0, n < 1e15 else { throw s.failure("binary_data_size must be a non-negative integer") }
                    input.binarySize = Int(n)
                }
            case "data":
                guard input.data == nil && input.tensor == nil else { throw s.failure("'data' given twice in an input") }
                if input.binarySize == nil, let name = input.name, let datatype = input.datatype, let shape = input.shape,
                   let count = try? Tensor.elementCount(of: shape) {
                    // The usual order (name, datatype, shape, data): decoded in this one pass.
                    let start = s.position
                    do throws(Failure) {
                        input.tensor = .success(try decodeData(&s, name: name, datatype: datatype, shape: shape, count: count))
                    } catch {
                        // Reported with the input's other errors, after the whole request is read.
                        input.tensor = .failure(error)
                        s.position = start
                        _ = try s.skipStructure()
                    }
                } else {
                    // Found by its brackets only: decodeJSONData parses it strictly, once.
                    input.data = try s.skipStructure()
                }
            default:
                throw s.failure("unknown key '\(key)' in an input")
            }
        }
        return input
    }

    // MARK: Tensor data

    private static func decodeJSONData(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, name: String, datatype: DataType,
                                       shape: [Int], count: Int) throws(Failure) -> Tensor {
        var scanner = JSONScanner(raw, from: range.lowerBound, to: range.upperBound)
        let tensor = try decodeData(&scanner, name: name, datatype: datatype, shape: shape, count: count)
        guard scanner.peek() == nil else {
            throw Failure(message: "input '\(name)': unexpected bytes after the data at byte \(scanner.position)")
        }
        return tensor
    }

    /// Decodes the `data` value at the scanner's position, flat or nested, straight into the
    /// tensor's buffer; leaves the scanner after it.
    private static func decodeData(_ scanner: inout JSONScanner, name: String, datatype: DataType, shape: [Int], count: Int) throws(Failure) -> Tensor {
        // Every element takes at least one byte of JSON: a larger count cannot be in the bytes
        // left, so a small request cannot make the daemon allocate a huge buffer.
        guard count <= scanner.end - scanner.position else {
            throw Failure(message: "input '\(name)': shape \(shape) needs \(count) elements, the data holds fewer")
        }
        do {
            if datatype == .bytes {
                var strings: [[UInt8]] = []
                strings.reserveCapacity(count)
                let written = try walk(&scanner, shape: shape, count: count) { (s: inout JSONScanner, _: Int) throws(JSONScanner.Failure) in
                    strings.append(try s.stringBytes())
                }
                try finish(&scanner, name: name, shape: shape, count: count, written: written)
                return try Tensor(shape: shape, byteStrings: strings)
            }
            return try Tensor(datatype.elementType, shape: shape) { (buffer: UnsafeMutableRawBufferPointer) throws in
                let written: Int
                switch datatype {
                case .bool: written = try fill(&scanner, buffer, UInt8.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.bool() ? 1 : 0 }
                case .uint8: written = try fill(&scanner, buffer, UInt8.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.uint64(), &s) }
                case .uint16: written = try fill(&scanner, buffer, UInt16.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.uint64(), &s) }
                case .uint32: written = try fill(&scanner, buffer, UInt32.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.uint64(), &s) }
                case .uint64: written = try fill(&scanner, buffer, UInt64.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.uint64() }
                case .int8: written = try fill(&scanner, buffer, Int8.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.int64(), &s) }
                case .int16: written = try fill(&scanner, buffer, Int16.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.int64(), &s) }
                case .int32: written = try fill(&scanner, buffer, Int32.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try narrow(try s.int64(), &s) }
                case .int64: written = try fill(&scanner, buffer, Int64.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.int64() }
                case .fp16: written = try fill(&scanner, buffer, UInt16.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                    let half = Float16(try s.float())
                    guard half.isFinite else { throw s.failure("number out of range for FP16 (largest magnitude 65504)") }
                    return half.bitPattern
                }
                case .bf16: written = try fill(&scanner, buffer, UInt16.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in BFloat16(try s.float()).bitPattern }
                case .fp32: written = try fill(&scanner, buffer, Float.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.float() }
                case .fp64: written = try fill(&scanner, buffer, Double.self, shape, count) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.double() }
                case .bytes: written = 0
                }
                try finish(&scanner, name: name, shape: shape, count: count, written: written)
            }
        } catch let error as JSONScanner.Failure {
            throw Failure(message: "input '\(name)': \(error.message)")
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(message: "input '\(name)': \(error)")
        }
    }

    private static func narrow<T: FixedWidthInteger, S: BinaryInteger>(_ value: S, _ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> T {
        guard let narrowed = T(exactly: value) else { throw scanner.failure("\(value) is out of range for \(T.self)") }
        return narrowed
    }

    /// Reads `data`'s scalars with `read` into the tensor's buffer, in order; returns how many.
    @inline(__always)
    private static func fill<T>(_ scanner: inout JSONScanner, _ buffer: UnsafeMutableRawBufferPointer, _: T.Type, _ shape: [Int], _ count: Int,
                                _ read: (inout JSONScanner) throws(JSONScanner.Failure) -> T) throws(JSONScanner.Failure) -> Int {
        let typed = buffer.bindMemory(to: T.self)
        return try walk(&scanner, shape: shape, count: count) { (s: inout JSONScanner, index: Int) throws(JSONScanner.Failure) in
            typed[index] = try read(&s)
        }
    }

    /// Walks `data`, flat or nested, calling `element` with each scalar and its index; refuses
    /// more than `count` scalars or nesting deeper than 32. Iterative (no recursion, no closure
    /// per array), since a 224×224×3 image is 150,528 scalars in 673 arrays. Returns how many
    /// scalars it read.
    @inline(__always)
    private static func walk(_ s: inout JSONScanner, shape: [Int], count: Int,
                             _ element: (inout JSONScanner, Int) throws(JSONScanner.Failure) -> Void) throws(JSONScanner.Failure) -> Int {
        var index = 0
        var depth = 0
        while true {
            // A value: an array opens, or a scalar is read.
            guard let next = s.peek() else { throw s.failure("expected a value") }
            if next == UInt8(ascii: "[") {
                guard depth < 32 else { throw s.failure("data nested deeper than 32") }
                depth += 1
                s.position += 1
                if !s.consume(UInt8(ascii: "]")) { continue }
                depth -= 1
            } else {
                guard index < count else { throw s.failure("shape \(shape) needs \(count) elements, the data holds more") }
                try element(&s, index)
                index += 1
            }
            // After a value: close arrays until one goes on with its next element.
            while true {
                if depth == 0 { return index }
                if s.consume(UInt8(ascii: ",")) { break }
                guard s.consume(UInt8(ascii: "]")) else { throw s.failure("expected ',' or ']'") }
                depth -= 1
            }
        }
    }

    /// After the walk: exactly `count` scalars read.
    private static func finish(_ scanner: inout JSONScanner, name: String, shape: [Int], count: Int, written: Int) throws(Failure) {
        guard written == count else {
            throw Failure(message: "input '\(name)': shape \(shape) needs \(count) elements, the data holds \(written)")
        }
    }

    private static func decodeBinary(_ bytes: UnsafeRawBufferPointer, name: String, datatype: DataType, shape: [Int], count: Int) throws(Failure) -> Tensor {
        do {
            if datatype == .bytes {
                // Each element: a 4-byte little-endian length, then that many bytes.
                var strings: [[UInt8]] = []
                var offset = 0
                while offset < bytes.count {
                    guard strings.count < count else { throw Failure(message: "input '\(name)': binary BYTES data holds more than \(count) elements") }
                    guard offset + 4 <= bytes.count else { throw Failure(message: "input '\(name)': truncated length prefix in binary BYTES data") }
                    let length = Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
                    offset += 4
                    guard length <= bytes.count - offset else { throw Failure(message: "input '\(name)': a BYTES element of \(length) bytes runs past its data") }
                    strings.append(Array(bytes[offset..<offset + length]))
                    offset += length
                }
                guard strings.count == count else {
                    throw Failure(message: "input '\(name)': shape \(shape) needs \(count) elements, the binary data holds \(strings.count)")
                }
                return try Tensor(shape: shape, byteStrings: strings)
            }
            let size = datatype.elementType.byteSize!
            guard bytes.count == count * size else {
                throw Failure(message: "input '\(name)': shape \(shape) of \(datatype.rawValue) needs \(count * size) bytes, binary_data_size is \(bytes.count)")
            }
            return try Tensor(datatype.elementType, shape: shape, bytes: bytes)
        } catch let error as Failure {
            throw error
        } catch let error as RuntimeError {
            throw Failure(message: "input '\(name)': \(error.message)")
        } catch {
            throw Failure(message: "input '\(name)': \(error)")
        }
    }
}
