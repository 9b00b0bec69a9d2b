import Foundation
import InferenceCodec
import Runtime

/// A servable whose outputs include named heads: consecutive slices of an output's last
/// dimension, each served as an output of its own beside the output it comes from (the
/// manifest's `heads`). A model that answers three questions in one logits vector of 14 is served
/// as `logits` [N, 14] plus `skin_type` [N, 5], `hair_type` [N, 4] and `condition` [N, 5], each
/// with its own class names, so that a classification of a head ranks that question alone.
///
/// Invariants (checked by ``check(_:outputs:)`` before one is made): each split output is FP32
/// with a fixed last dimension equal to the sum of its heads' sizes; head names are unique and
/// differ from the base's output names.
///
/// Thread-safety: immutable; `predict` calls the base's, which may be called from many threads.
public final class HeadsServable: Servable {
    /// One head: where its slice lies in its source output.
    struct Slice: Sendable {
        var name: String
        var source: String
        var offset: Int
        var size: Int
        var softmax: Bool
    }

    public let base: any Servable
    public let signature: ServableSignature
    /// By head name.
    let slices: [String: Slice]
    /// Head names in signature order (after the base's outputs).
    let order: [String]

    /// Wraps `base` with `heads` (by source output name), after ``check(_:outputs:)``.
    public init(base: any Servable, heads: [String: [Manifest.Head]]) throws(RegistryError) {
        try HeadsServable.check(heads, outputs: base.signature.outputs)
        self.base = base
        var slices: [String: Slice] = [:]
        var order: [String] = []
        var outputs = base.signature.outputs
        var labels = base.signature.labels
        // Heads follow the base's outputs, in the order of the outputs they split, each output's
        // heads in the order their slices lie.
        for source in base.signature.outputs where heads[source.name] != nil {
            var offset = 0
            for head in heads[source.name]! {
                slices[head.name] = Slice(name: head.name, source: source.name, offset: offset, size: head.size, softmax: head.softmax)
                order.append(head.name)
                outputs.append(TensorInfo(name: head.name, elementType: .float, shape: Array(source.shape.dropLast()) + [.fixed(head.size)]))
                if !head.labels.isEmpty { labels[head.name] = head.labels }
                offset += head.size
            }
        }
        self.slices = slices
        self.order = order
        self.signature = ServableSignature(inputs: base.signature.inputs, outputs: outputs, labels: labels)
    }

    public var runsOnCallingThread: Bool { base.runsOnCallingThread }

    /// Checks `heads` against the outputs of the model they split; every error names the
    /// manifest key (`heads.logits`).
    public static func check(_ heads: [String: [Manifest.Head]], outputs: [TensorInfo]) throws(RegistryError) {
        for (output, list) in heads.sorted(by: { $0.key < $1.key }) {
            let key = "manifest key 'heads.\(output)'"
            guard let info = outputs.first(where: { $0.name == output }) else {
                throw RegistryError(.invalidConfiguration, "\(key): the model has no output '\(output)' (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
            }
            guard info.elementType == .float else {
                throw RegistryError(.invalidConfiguration, "\(key): output '\(output)' is \(DataType(info.elementType).rawValue); heads split FP32 outputs only")
            }
            guard case .fixed(let width)? = info.shape.last else {
                throw RegistryError(.invalidConfiguration, "\(key): output '\(output)' has no fixed last dimension to split (shape \(info.shape.map(\.description)))")
            }
            let total = list.reduce(0) { $0 + $1.size }
            guard total == width else {
                throw RegistryError(.invalidConfiguration, "\(key): the heads' sizes add up to \(total) (\(list.map { String($0.size) }.joined(separator: "+"))), output '\(output)' has \(width) in its last dimension")
            }
            for (index, head) in list.enumerated() where outputs.contains(where: { $0.name == head.name }) {
                throw RegistryError(.invalidConfiguration, "manifest key 'heads.\(output)[\(index)].name': '\(head.name)' is already an output of the model")
            }
        }
    }

    public func predict(_ inputs: [String: Tensor], outputs: [String]?, context: PredictionContext) throws(RegistryError) -> Prediction {
        // What the base must compute: the outputs asked for, with each head's source in place
        // of the head (once, whatever the number of heads asked of it).
        var wanted: [String]?
        if let outputs {
            var names: [String] = []
            for name in outputs {
                let needed = slices[name]?.source ?? name
                if !names.contains(needed) { names.append(needed) }
            }
            wanted = names
        }
        var prediction = try base.predict(inputs, outputs: wanted, context: context)
        let heads = outputs.map { $0.filter { slices[$0] != nil } } ?? order
        for name in heads {
            let slice = slices[name]!
            guard let source = prediction.outputs[slice.source] else {
                throw RegistryError(.modelFailure, "output '\(slice.source)' missing from the model's answer; head '\(name)' cannot be cut from it")
            }
            prediction.outputs[name] = try HeadsServable.cut(slice, from: source)
        }
        // Sources computed only for their heads are not part of the answer.
        if let outputs, let wanted {
            for name in wanted where !outputs.contains(name) { prediction.outputs[name] = nil }
        }
        return prediction
    }

    /// The head's slice of every row of `source` ([..., D] → [..., size]), through a softmax
    /// when the head asks for one.
    static func cut(_ slice: Slice, from source: Tensor) throws(RegistryError) -> Tensor {
        guard source.elementType == .float, let width = source.shape.last, width >= slice.offset + slice.size else {
            throw RegistryError(.modelFailure, "output '\(slice.source)' is \(source.elementType) \(source.shape); head '\(slice.name)' needs FP32 with \(slice.offset + slice.size) or more in its last dimension")
        }
        do throws(RuntimeError) {
            let values = try source.scalars(as: Float.self)
            let rows = width == 0 ? 0 : values.count / width
            var sliced = [Float](repeating: 0, count: rows * slice.size)
            for row in 0..<rows {
                let from = row * width + slice.offset, to = row * slice.size
                for i in 0..<slice.size { sliced[to + i] = values[from + i] }
                if slice.softmax { softmax(&sliced[to..<to + slice.size]) }
            }
            return try Tensor(shape: Array(source.shape.dropLast()) + [slice.size], scalars: sliced)
        } catch {
            throw RegistryError(.modelFailure, "head '\(slice.name)': \(error.message)")
        }
    }

    /// A numerically stable softmax in place: the maximum is subtracted first, so that no
    /// exponential overflows. Each exponential is computed in double and rounded to float once
    /// (the correctly rounded float, but for double-rounding cases rarer than one in a million),
    /// so that a reference computing the same formula the same way agrees bit for bit; the sum
    /// is taken in float, in index order.
    static func softmax(_ values: inout ArraySlice<Float>) {
        guard let largest = values.max() else { return }
        var sum: Float = 0
        for i in values.indices {
            values[i] = Float(Foundation.exp(Double(values[i] - largest)))
            sum += values[i]
        }
        for i in values.indices { values[i] /= sum }
    }
}
