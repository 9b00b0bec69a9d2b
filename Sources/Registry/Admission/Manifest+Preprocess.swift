import Foundation
import InferenceCodec
import Runtime
import Wire

extension Manifest {
    /// How one input's raw form, as clients send it, becomes the model's input: the manifest's
    /// `preprocess.<input>`.
    ///
    /// The model's input is made, element by element and in this order: the raw value cast to
    /// Float32, multiplied by `scale`, minus `mean[c]`, divided by `std[c]` (each one Float32
    /// operation, `c` the channel in the client's order), then the channels reversed when
    /// `channelOrder` is BGR, then laid out as `modelLayout` says. No resizing: clients send the
    /// model's own height and width.
    ///
    /// What is checked here concerns the declaration alone; whether it fits the model (the input
    /// exists, is FP32, has the layout's rank and as many channels as `mean` and `std` give) is
    /// checked when the model loads (`InputContract`).
    public struct Preprocess: Sendable, Equatable {
        /// Where the channel lies: `NHWC` and `NCHW` are images (rank 4); `NF` is rows of
        /// features (rank 2), which have one channel.
        public enum Layout: String, Sendable, CaseIterable {
            case nhwc = "NHWC", nchw = "NCHW", nf = "NF"

            public var isImage: Bool { self != .nf }
        }

        /// The model's channel order. Clients send RGB; `bgr` reverses the channels after
        /// normalising them.
        public enum ChannelOrder: String, Sendable, CaseIterable { case rgb = "RGB", bgr = "BGR" }

        /// `mean` or `std`: one value for every channel (a JSON number), or one per channel (an
        /// array, in the client's channel order).
        public enum Values: Sendable, Equatable {
            case all(Float)
            case perChannel([Float])

            /// The value for channel `c`.
            public func value(channel c: Int) -> Float {
                switch self {
                case .all(let v): v
                case .perChannel(let values): values[c]
                }
            }
        }

        /// The element type clients send (`accepts.datatype`).
        public var datatype: ElementType
        /// The layout clients send (`accepts.layout`); nil: the model's own shape, any rank, one
        /// channel.
        public var layout: Layout?
        /// The layout the model takes (`to_layout`), when it differs from `layout`'s name.
        public var toLayout: Layout?
        public var scale: Float
        public var mean: Values
        public var std: Values
        public var channelOrder: ChannelOrder

        public init(datatype: ElementType, layout: Layout? = nil, toLayout: Layout? = nil, scale: Float = 1,
                    mean: Values = .all(0), std: Values = .all(1), channelOrder: ChannelOrder = .rgb) {
            self.datatype = datatype
            self.layout = layout
            self.toLayout = toLayout
            self.scale = scale
            self.mean = mean
            self.std = std
            self.channelOrder = channelOrder
        }

        /// The layout of the model's input: `to_layout`, else the layout clients send.
        public var modelLayout: Layout? { toLayout ?? layout }
    }

    /// The raw datatypes a contract may accept: integers and floats that a Float32 cast reads
    /// as numbers (BOOL and BYTES are not pixels; FP16 and BF16 have no client that sends them
    /// raw).
    public static let preprocessDatatypes: [DataType] = [.uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64, .fp32, .fp64]

    /// Reads `preprocess`: `{"<input>": {"accepts": {"datatype": ..., "layout": ...}, "to_layout":
    /// ..., "scale": ..., "mean": ..., "std": ..., "channel_order": ...}}`. Every error names the
    /// file and the key (`preprocess.image.std`).
    static func parsePreprocess(_ value: Any, file: String) throws(RegistryError) -> [String: Preprocess] {
        func fail(_ key: String, _ message: String) -> RegistryError {
            RegistryError(.invalidConfiguration, "\(file): key '\(key)': \(message)")
        }
        guard let object = value as? [String: Any] else {
            throw fail("preprocess", "expected an object of input name to its contract ({\"accepts\": {\"datatype\": ...}, ...}), got \(ConfigReader.describe(value))")
        }
        var contracts: [String: Preprocess] = [:]
        for input in object.keys.sorted() {
            contracts[input] = try parseContract(object[input]!, key: "preprocess.\(input)", fail: fail)
        }
        return contracts
    }

    private static func parseContract(_ value: Any, key: String, fail: (String, String) -> RegistryError) throws(RegistryError) -> Preprocess {
        guard let object = value as? [String: Any] else {
            throw fail(key, "expected an object {\"accepts\": {\"datatype\": ..., \"layout\": ...}, \"to_layout\": ..., \"scale\": ..., \"mean\": ..., \"std\": ..., \"channel_order\": ...}, got \(ConfigReader.describe(value))")
        }
        try refuseUnknown(object, known: ["accepts", "to_layout", "scale", "mean", "std", "channel_order"], key: key, fail: fail)
        guard let acceptsValue = present(object["accepts"]), let accepts = acceptsValue as? [String: Any] else {
            throw fail("\(key).accepts", "expected an object {\"datatype\": ..., \"layout\": ...} (the raw form clients send), got \(describe(object["accepts"]))")
        }
        try refuseUnknown(accepts, known: ["datatype", "layout"], key: "\(key).accepts", fail: fail)
        let names = preprocessDatatypes.map(\.rawValue)
        guard let name = present(accepts["datatype"]) as? String, let datatype = DataType(rawValue: name), names.contains(name) else {
            throw fail("\(key).accepts.datatype", "expected one of \(names.map { "\"\($0)\"" }.joined(separator: ", ")), got \(describe(accepts["datatype"]))")
        }
        var contract = Preprocess(datatype: datatype.elementType)
        contract.layout = try layout(accepts["layout"], key: "\(key).accepts.layout", fail: fail)
        if let target = try layout(object["to_layout"], key: "\(key).to_layout", fail: fail) {
            guard let from = contract.layout else {
                throw fail("\(key).to_layout", "needs 'accepts.layout', the layout clients send")
            }
            guard from.isImage == target.isImage else {
                throw fail("\(key).to_layout", "'\(target.rawValue)' from '\(from.rawValue)': only NHWC and NCHW convert into each other")
            }
            contract.toLayout = target
        }
        if let raw = present(object["scale"]) {
            guard let scale = float(raw), scale != 0 else {
                throw fail("\(key).scale", "expected a finite number other than 0, got \(describe(raw))")
            }
            contract.scale = scale
        }
        let image = contract.layout?.isImage ?? false
        contract.mean = try values(object["mean"], default: 0, key: "\(key).mean", image: image, positive: false, fail: fail)
        contract.std = try values(object["std"], default: 1, key: "\(key).std", image: image, positive: true, fail: fail)
        if let raw = present(object["channel_order"]) {
            let orders = Preprocess.ChannelOrder.allCases.map(\.rawValue)
            guard let text = raw as? String, let order = Preprocess.ChannelOrder(rawValue: text) else {
                throw fail("\(key).channel_order", "expected one of \(orders.map { "\"\($0)\"" }.joined(separator: ", ")), got \(describe(raw))")
            }
            guard image else {
                throw fail("\(key).channel_order", "needs an image layout (NHWC or NCHW) in 'accepts.layout'")
            }
            contract.channelOrder = order
        }
        return contract
    }

    /// `mean` or `std`: a number for every channel, or an array with one per channel. Without an
    /// image layout the input has one channel, so an array holds one value.
    private static func values(_ value: Any?, default fallback: Float, key: String, image: Bool, positive: Bool,
                               fail: (String, String) -> RegistryError) throws(RegistryError) -> Preprocess.Values {
        let expected = positive ? "a number above 0" : "a finite number"
        func valid(_ raw: Any) -> Float? {
            guard let v = float(raw), !positive || v > 0 else { return nil }
            return v
        }
        guard let raw = present(value) else { return .all(fallback) }
        if let list = raw as? [Any] {
            guard !list.isEmpty else { throw fail(key, "expected \(expected) or an array of one per channel, got an empty array") }
            var result: [Float] = []
            for (index, element) in list.enumerated() {
                guard let v = valid(element) else { throw fail("\(key)[\(index)]", "expected \(expected), got \(describe(element))") }
                result.append(v)
            }
            guard image || result.count == 1 else {
                throw fail(key, "\(result.count) values for one channel: without an image layout (NHWC, NCHW) the input has one channel; give one value")
            }
            return .perChannel(result)
        }
        guard let v = valid(raw) else { throw fail(key, "expected \(expected) or an array of one per channel, got \(describe(raw))") }
        return .all(v)
    }

    private static func layout(_ value: Any?, key: String, fail: (String, String) -> RegistryError) throws(RegistryError) -> Preprocess.Layout? {
        guard let raw = present(value) else { return nil }
        guard let text = raw as? String, let layout = Preprocess.Layout(rawValue: text) else {
            let names = Preprocess.Layout.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw fail(key, "expected one of \(names), got \(describe(raw))")
        }
        return layout
    }

    private static func refuseUnknown(_ object: [String: Any], known: [String], key: String, fail: (String, String) -> RegistryError) throws(RegistryError) {
        for field in object.keys.sorted() where !known.contains(field) {
            let guess = Suggestion.closest(to: field, among: known).map { " (did you mean '\(key).\($0)'?)" } ?? ""
            throw fail("\(key).\(field)", "unknown key\(guess)")
        }
    }

    /// A JSON number as Float32 (rounded to nearest, as NumPy's `np.float32(v)`), nil unless
    /// it is a number that stays finite in Float32.
    private static func float(_ raw: Any) -> Float? {
        guard let n = raw as? NSNumber, !ConfigReader.isBoolean(n), n.doubleValue.isFinite else { return nil }
        let v = Float(n.doubleValue)
        return v.isFinite ? v : nil
    }

    /// A value that is there: JSON null counts as absent, as elsewhere in manifests.
    private static func present(_ value: Any?) -> Any? {
        guard let value, !(value is NSNull) else { return nil }
        return value
    }

    /// A value as an error quotes it: a string or number as written, else its kind.
    private static func describe(_ value: Any?) -> String {
        guard let value = present(value) else { return "nothing" }
        if let s = value as? String { return "\"\(s)\"" }
        if let n = value as? NSNumber, !ConfigReader.isBoolean(n) { return "\(n)" }
        return ConfigReader.describe(value)
    }
}
