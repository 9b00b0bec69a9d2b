import Foundation

/// `pipeline.json`: a version whose artifact is a graph of steps over other models, checked
/// strictly (every key known, every reference resolvable in order); every error names the file
/// and the key. Pure: parsing reads no registry state (``PipelineBuilder`` checks the graph
/// against the models that serve).
public struct PipelineSpec: Sendable, Equatable {
    /// A tensor an earlier step gave: `step.output`, split at the first dot (an ONNX output name
    /// may hold dots: `router.output.1` is output `output.1` of step `router`).
    public struct TensorRef: Sendable, Equatable, CustomStringConvertible {
        public var step: String
        public var output: String
        public var description: String { "\(step).\(output)" }
    }

    /// Where a step's input comes from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// `$request.X`: the pipeline's input X.
        case request(String)
        case step(TensorRef)

        public var description: String {
            switch self {
            case .request(let name): "$request.\(name)"
            case .step(let ref): ref.description
            }
        }
    }

    /// A model a step calls: `name` (served through its own routing: production, split,
    /// rollout, the request's routing key), `name@7` (pinned) or `name@alias`.
    public struct ModelRef: Sendable, Equatable, Hashable, CustomStringConvertible {
        public enum Selector: Sendable, Equatable, Hashable {
            case routed
            case version(Int)
            case alias(String)
        }
        public var model: String
        public var selector: Selector

        public var description: String {
            switch selector {
            case .routed: model
            case .version(let v): "\(model)@\(v)"
            case .alias(let a): "\(model)@\(a)"
            }
        }
    }

    /// What a step runs: one model, or a model chosen per row by a scalar of an earlier step.
    public enum Target: Sendable, Equatable {
        case model(ModelRef)
        /// `cases` maps the text form of the value (`0`, `true`, `cat`) to a model; a value with
        /// no case goes to `fallback`, or is a 400 when there is none.
        case choose(on: TensorRef, cases: [String: ModelRef], fallback: ModelRef?)

        /// Every model it may call.
        public var models: [ModelRef] {
            switch self {
            case .model(let ref): [ref]
            case .choose(_, let cases, let fallback): cases.keys.sorted().map { cases[$0]! } + (fallback.map { [$0] } ?? [])
            }
        }
    }

    public struct Step: Sendable, Equatable {
        public var id: String
        public var target: Target
        /// Model input name to where it comes from, in name order.
        public var inputs: [(name: String, source: Source)]

        public static func == (a: Step, b: Step) -> Bool {
            a.id == b.id && a.target == b.target && a.inputs.map(\.name) == b.inputs.map(\.name) && a.inputs.map(\.source) == b.inputs.map(\.source)
        }
    }

    public var description: String?
    public var steps: [Step]
    /// The pipeline's outputs, in name order: each names a tensor of a step.
    public var outputs: [(name: String, ref: TensorRef)]

    public static func == (a: PipelineSpec, b: PipelineSpec) -> Bool {
        a.description == b.description && a.steps == b.steps && a.outputs.map(\.name) == b.outputs.map(\.name)
            && a.outputs.map(\.ref) == b.outputs.map(\.ref)
    }

    /// The file name of a pipeline version's artifact.
    public static let fileName = "pipeline.json"
    /// Limits that keep a hostile file small to check: far above any real graph.
    static let maximumSteps = 64
    static let maximumCases = 1024

    /// Every model the pipeline may call, each once, in order of first use.
    public var models: [ModelRef] {
        var seen: Set<ModelRef> = []
        return steps.flatMap(\.target.models).filter { seen.insert($0).inserted }
    }

    /// The pipeline's inputs: the `$request.X` names its steps read, in name order.
    public var requestInputs: [String] {
        Set(steps.flatMap { $0.inputs.compactMap { if case .request(let name) = $0.source { name } else { nil } } }).sorted()
    }
}

extension PipelineSpec {
    /// Parses and checks `pipeline.json`; every error names the file and the key.
    public static func parse(file: String, data: Data) throws(RegistryError) -> PipelineSpec {
        guard data.count <= 1 << 20 else {
            throw RegistryError(.invalidConfiguration, "\(file): pipeline larger than 1 MiB")
        }
        var r = try ConfigReader(file: file, data: data)
        let description = try r.string("description")
        guard let rawSteps = r.any("steps") else {
            throw RegistryError(.invalidConfiguration, "\(file): key 'steps' is required: a list of steps")
        }
        guard let stepList = rawSteps as? [Any], !stepList.isEmpty, stepList.count <= maximumSteps else {
            throw RegistryError(.invalidConfiguration, "\(file): key 'steps': expected a list of 1 to \(maximumSteps) steps, got \(ConfigReader.describe(rawSteps))")
        }
        var steps: [Step] = []
        var known: Set<String> = []
        for (index, raw) in stepList.enumerated() {
            let key = "steps[\(index)]"
            guard let object = raw as? [String: Any] else {
                throw RegistryError(.invalidConfiguration, "\(file): key '\(key)': expected an object, got \(ConfigReader.describe(raw))")
            }
            var s = ConfigReader(file: file, prefix: key, object: object)
            let step = try parseStep(&s, file: file, key: key, earlier: known)
            try s.finish()
            guard known.insert(step.id).inserted else {
                throw RegistryError(.invalidConfiguration, "\(file): key '\(key).id': step '\(step.id)' is defined twice")
            }
            steps.append(step)
        }
        guard let outputMap = try r.stringMap("outputs"), !outputMap.isEmpty else {
            throw RegistryError(.invalidConfiguration, "\(file): key 'outputs' is required: an object of output name to 'step.output'")
        }
        var outputs: [(name: String, ref: TensorRef)] = []
        for name in outputMap.keys.sorted() {
            guard isName(name) else {
                throw RegistryError(.invalidConfiguration, "\(file): key 'outputs.\(name)': an output name is 1-128 of letters, digits, '_', '-', '.'")
            }
            let ref = try tensorRef(outputMap[name]!, file: file, key: "outputs.\(name)", earlier: known)
            outputs.append((name, ref))
        }
        try r.finish()
        return PipelineSpec(description: description, steps: steps, outputs: outputs)
    }

    private static func parseStep(_ s: inout ConfigReader, file: String, key: String, earlier: Set<String>) throws(RegistryError) -> Step {
        guard let id = try s.string("id") else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).id' is required")
        }
        guard isName(id), !id.contains("."), !id.hasPrefix("$") else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).id': '\(id)' is not a step id (1-128 of letters, digits, '_', '-'; no '.')")
        }
        let target: Target
        switch s.any("model") {
        case let name as String:
            target = .model(try modelRef(name, file: file, key: "\(key).model"))
        case let object as [String: Any]:
            target = try choice(object, file: file, key: "\(key).model", earlier: earlier)
        case let other?:
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).model': expected a model name or a switch object, got \(ConfigReader.describe(other))")
        case nil:
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).model' is required")
        }
        guard let inputMap = try s.stringMap("inputs"), !inputMap.isEmpty else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).inputs' is required: an object of model input name to '$request.X' or 'step.output'")
        }
        var inputs: [(name: String, source: Source)] = []
        for name in inputMap.keys.sorted() {
            let text = inputMap[name]!
            let inputKey = "\(key).inputs.\(name)"
            if text.hasPrefix("$request.") {
                let requestName = String(text.dropFirst("$request.".count))
                guard isName(requestName) else {
                    throw RegistryError(.invalidConfiguration, "\(file): key '\(inputKey)': '\(text)' names no request input")
                }
                inputs.append((name, .request(requestName)))
            } else {
                inputs.append((name, .step(try tensorRef(text, file: file, key: inputKey, earlier: earlier))))
            }
        }
        return Step(id: id, target: target, inputs: inputs)
    }

    private static func choice(_ object: [String: Any], file: String, key: String, earlier: Set<String>) throws(RegistryError) -> Target {
        var r = ConfigReader(file: file, prefix: key, object: object)
        guard let on = try r.string("switch") else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).switch' is required: the 'step.output' whose value picks the model")
        }
        let ref = try tensorRef(on, file: file, key: "\(key).switch", earlier: earlier)
        guard let caseMap = try r.stringMap("cases"), !caseMap.isEmpty, caseMap.count <= maximumCases else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key).cases' is required: an object of value to model (1 to \(maximumCases))")
        }
        var cases: [String: ModelRef] = [:]
        for (value, name) in caseMap { cases[value] = try modelRef(name, file: file, key: "\(key).cases.\(value)") }
        let fallback = try r.string("default").map { (name) throws(RegistryError) -> ModelRef in try modelRef(name, file: file, key: "\(key).default") }
        try r.finish()
        return .choose(on: ref, cases: cases, fallback: fallback)
    }

    /// `name`, `name@7` or `name@alias`.
    static func modelRef(_ text: String, file: String, key: String) throws(RegistryError) -> ModelRef {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard ModelName.isValid(parts[0]) else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key)': '\(text)' is not a model reference ('name', 'name@7' or 'name@alias'; \(ModelName.rule))")
        }
        guard parts.count == 2 else { return ModelRef(model: parts[0], selector: .routed) }
        if let version = Int(parts[1]), version > 0, String(version) == parts[1] { return ModelRef(model: parts[0], selector: .version(version)) }
        guard Lifecycle.isValidAlias(parts[1]) else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key)': '\(parts[1])' in '\(text)' is neither a version number nor an alias")
        }
        return ModelRef(model: parts[0], selector: .alias(parts[1]))
    }

    /// `step.output`, split at the first dot, naming a step defined before.
    static func tensorRef(_ text: String, file: String, key: String, earlier: Set<String>) throws(RegistryError) -> TensorRef {
        guard let dot = text.firstIndex(of: "."), dot != text.startIndex, text.index(after: dot) != text.endIndex else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key)': '\(text)' is not 'step.output' (or '$request.X' for an input)")
        }
        let step = String(text[..<dot])
        guard earlier.contains(step) else {
            throw RegistryError(.invalidConfiguration, "\(file): key '\(key)': '\(text)' refers to step '\(step)', which is not defined before it (steps run in order)")
        }
        return TensorRef(step: step, output: String(text[text.index(after: dot)...]))
    }

    static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128 && text.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E
        }
    }
}
