import InferenceCodec
import Runtime

extension PipelineServable {
    /// A `switch` step: the request's rows grouped by the model their value picks (in order of
    /// first row), each model run on its rows.
    func choose(step: PipelineSpec.Step, on: PipelineSpec.TensorRef, values: Tensor, cases: [String: PipelineSpec.ModelRef],
                fallback: PipelineSpec.ModelRef?, _ inputs: [String: Tensor], _ inner: PredictionContext, _ context: PredictionContext,
                _ steps: [PredictionStep]) throws(RegistryError) -> (StepResult, [PredictionStep]) {
        let texts: [String]
        do throws(RuntimeError) { texts = try values.elementTexts() } catch {
            throw RegistryError(.modelFailure, "\(provenance), step '\(step.id)': '\(on)' cannot pick a model: \(error.message)")
        }
        let rowCount = inputs.values.first?.rowCount ?? 0
        guard texts.count == rowCount, inputs.values.allSatisfy({ $0.rowCount == rowCount }) else {
            throw RegistryError(.invalidArgument, "\(provenance), step '\(step.id)': '\(on)' gives \(texts.count) values for \(rowCount) rows")
        }
        var groups: [(ref: PipelineSpec.ModelRef, rows: [Int])] = []
        for (row, text) in texts.enumerated() {
            guard let ref = cases[text] ?? fallback else {
                throw RegistryError(.invalidArgument, "\(provenance), step '\(step.id)': value '\(text)' of '\(on)' (row \(row)) has no case, and the step has no default")
            }
            if let index = groups.firstIndex(where: { $0.ref == ref }) { groups[index].rows.append(row) } else { groups.append((ref, [row])) }
        }
        var steps = steps
        var parts: [StepResult.Part] = []
        for group in groups {
            let (version, decision) = try resolve(group.ref, step: step.id, routingKey: context.routingKey)
            var subset: [String: Tensor] = [:]
            do throws(RuntimeError) {
                for (name, tensor) in inputs { subset[name] = groups.count == 1 ? tensor : try tensor.rows(group.rows) }
            } catch {
                throw RegistryError(.invalidArgument, "\(provenance), step '\(step.id)': \(error.message)")
            }
            let answer = try runPart(version, step: step.id, subset, needed[step.id] ?? [], inner)
            parts.append(StepResult.Part(version: version, rows: groups.count == 1 ? nil : group.rows, outputs: answer.outputs))
            steps.append(PredictionStep(step: step.id, provenance: version.provenance, routing: decision, rows: group.rows.count))
            steps += answer.steps.map { nested in var n = nested; n.step = "\(step.id)/\(n.step)"; return n }
        }
        return (StepResult(parts: parts, rowCount: rowCount, step: step.id), steps)
    }

    private func runPart(_ version: LoadedVersion, step: String, _ inputs: [String: Tensor], _ asked: [String], _ context: PredictionContext)
        throws(RegistryError) -> Prediction
    {
        do throws(RegistryError) {
            return try version.servable.predict(inputs, outputs: asked, context: context)
        } catch {
            throw RegistryError(error.code, "\(provenance), step '\(step)': \(error.message)")
        }
    }
}

/// What one step gave: one part per model that answered (one, unless a `switch` split the rows).
struct StepResult {
    struct Part {
        var version: LoadedVersion
        /// The request's rows this part answered, in order; nil for all of them.
        var rows: [Int]?
        var outputs: [String: Tensor]
    }
    var parts: [Part]
    var rowCount = 0
    var step = ""

    /// The step's output `name` over every row. Parts whose shapes differ past the first
    /// dimension cannot be put together: a 400 naming the output and the shapes (`use` says who
    /// wanted it).
    func tensor(_ name: String, for use: String) throws(RegistryError) -> Tensor {
        if parts.count == 1, parts[0].rows == nil, let whole = parts[0].outputs[name] { return whole }
        var pieces: [(tensor: Tensor, rows: [Int])] = []
        for part in parts {
            guard let tensor = part.outputs[name] else {
                throw RegistryError(.modelFailure, "step '\(step)': \(part.version.provenance) gave no output '\(name)'")
            }
            pieces.append((tensor, part.rows ?? Array(0..<(tensor.rowCount ?? 0))))
        }
        let shapes = Set(pieces.map { Array($0.tensor.shape.dropFirst()) })
        let types = Set(pieces.map { $0.tensor.elementType })
        guard shapes.count == 1, types.count == 1 else {
            let described = parts.map { part in
                "\(part.outputs[name].map { "\(DataType($0.elementType).rawValue) \($0.shape)" } ?? "?") from \(part.version.provenance)"
            }.joined(separator: ", ")
            throw RegistryError(.invalidArgument, "\(use): output '\(name)' of step '\(step)' has different shapes for this request's rows (\(described)); ask for it with the 'classification' parameter, which gives every model the same shape, or send rows that take one model")
        }
        do throws(RuntimeError) {
            return try Tensor.merging(rows: rowCount, from: pieces)
        } catch {
            throw RegistryError(.modelFailure, "step '\(step)': output '\(name)': \(error.message)")
        }
    }

    /// The step's output `name` as its top `count` classes, each part with the class names of
    /// the model that answered it.
    func classified(_ name: String, count: Int, output: String, pipeline: Provenance) throws(RegistryError) -> Tensor {
        var pieces: [(tensor: Tensor, rows: [Int])] = []
        for part in parts {
            guard let scores = part.outputs[name] else {
                throw RegistryError(.modelFailure, "\(pipeline), step '\(step)': \(part.version.provenance) gave no output '\(name)'")
            }
            guard Classification.supports(scores.elementType),
                  let classes = Classification.top(count, of: scores, labels: part.version.servable.signature.labels[name] ?? []) else {
                throw RegistryError(.invalidArgument, "output '\(output)' is \(DataType(scores.elementType).rawValue): a classification ranks numeric scores (INT*, UINT*, FP16, BF16, FP32, FP64)")
            }
            pieces.append((classes, part.rows ?? Array(0..<(classes.rowCount ?? 0))))
        }
        if pieces.count == 1 && parts[0].rows == nil { return pieces[0].tensor }
        do throws(RuntimeError) {
            return try Tensor.merging(rows: rowCount, from: pieces)
        } catch {
            throw RegistryError(.modelFailure, "\(pipeline), step '\(step)': output '\(output)': \(error.message)")
        }
    }
}
