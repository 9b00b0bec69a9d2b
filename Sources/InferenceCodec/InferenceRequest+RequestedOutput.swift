import Tensors
import Wire

extension InferenceRequest {
    /// One entry of the request's `outputs`: an output by name, and how to return it.
    ///
    /// Its `parameters` are read strictly: a parameter registryd does not know is refused (400)
    /// rather than ignored, so that a client asking for something registryd cannot do (Triton's
    /// shared memory, say) learns so instead of receiving a different answer than it asked for.
    public struct RequestedOutput: Sendable, Equatable {
        public var name: String
        /// `parameters.binary_data`: this output in Triton's binary form (nil: the request's default).
        public var binary: Bool?
        /// `parameters.classification`: return the top `classification` classes of this output,
        /// as Triton's classification extension does (what tritonclient's `class_count` sends).
        public var classification: Int?

        public init(name: String, binary: Bool? = nil, classification: Int? = nil) {
            self.name = name
            self.binary = binary
            self.classification = classification
        }

        /// The output parameters registryd understands, in the order error messages list them.
        public static let knownParameters = ["binary_data", "classification"]

        /// The largest class count accepted: Triton reads it as a 32-bit unsigned integer.
        public static let maximumClassification = Int(UInt32.max)

        /// Reads one `{"name": ..., "parameters": {...}}` object at the scanner's position.
        static func parse(_ s: inout JSONScanner) throws(JSONScanner.Failure) -> RequestedOutput {
            var output = RequestedOutput(name: "")
            var parameters: JSONValue?
            try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.Failure) in
                switch key {
                case "name": output.name = try s.string()
                case "parameters":
                    let value = try s.value()
                    guard case .object = value else { throw s.failure("an output's 'parameters' must be an object") }
                    parameters = value
                default: throw s.failure("unknown key '\(key)' in a requested output")
                }
            }
            guard !output.name.isEmpty else { throw s.failure("each requested output needs a 'name'") }
            // Read after the object, so that the messages can name the output whatever the key order.
            guard case .object(let members)? = parameters else { return output }
            for (key, value) in members {
                switch key {
                case "binary_data":
                    guard case .bool(let flag) = value else {
                        throw s.failure("output '\(output.name)': parameter 'binary_data' must be true or false, got \(value.text)")
                    }
                    output.binary = flag
                case "classification":
                    guard case .number(let n, true) = value, n >= 1, n <= Double(maximumClassification) else {
                        throw s.failure("output '\(output.name)': parameter 'classification' must be a positive integer (how many classes to return), got \(value.text)")
                    }
                    output.classification = Int(n)
                default:
                    throw s.failure("output '\(output.name)': unknown parameter '\(key)' (registryd knows \(knownParameters.joined(separator: " and ")))")
                }
            }
            return output
        }
    }
}
