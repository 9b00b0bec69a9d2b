import CLinux
import Foundation
import Runtime

/// Turns a verified artifact into a warmed-up ONNX Runtime session. Runs on the loader's own
/// thread, never on serving threads.
public struct Loader: Sendable {
    public let environment: Environment
    public let options: SessionOptions
    /// Models smaller than this many bytes run on the calling thread alone (their own session
    /// options, one intra-op thread) instead of the environment's shared thread pool. For a
    /// small model the pool buys no parallelism, and two runs sharing it wait on each other (a
    /// shadow version's runs would queue with the serving version's on the same pool threads).
    /// Larger models share the pool, and so does a small file whose warm-up run is slow
    /// (``singleThreadMaximumRunSeconds``). 0 sends every model to the pool.
    public let singleThreadBelowBytes: Int64

    public init(environment: Environment, options: SessionOptions = SessionOptions(), singleThreadBelowBytes: Int64 = 0) {
        self.environment = environment
        self.options = options
        self.singleThreadBelowBytes = singleThreadBelowBytes
    }

    /// The session options for the artifact at `path`.
    func options(for path: String) -> SessionOptions {
        var chosen = options
        if chosen.intraOpThreads == nil, singleThreadBelowBytes > 0,
           let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value,
           size < singleThreadBelowBytes {
            chosen.intraOpThreads = 1
        }
        return chosen
    }

    /// A small file is not always a cheap model (a network whose weights are generated at load
    /// time, say): a single-threaded session whose warm-up run takes longer than this is loaded
    /// again on the shared pool, where its runs can use every core.
    public static let singleThreadMaximumRunSeconds = 0.002

    /// Loads `path` and runs it, on the manifest's sample inputs when it has them, else on
    /// inputs made from its signature, so that a model that loads but cannot run is caught
    /// before it serves.
    public func load(path: String, manifest: Manifest? = nil) throws(RegistryError) -> Session {
        FaultInjection.delayLoad()
        let chosen = options(for: path)
        var (session, runSeconds): (Session?, Double) = try loadAndWarmUp(path: path, manifest: manifest, options: chosen)
        if chosen.intraOpThreads == 1 && options.intraOpThreads == nil && runSeconds > Loader.singleThreadMaximumRunSeconds {
            // Released before the second load, and its freed memory handed back to the system:
            // a model whose weights are made at load time can hold 100 MB, which would otherwise
            // stay resident for the life of the daemon.
            session = nil
            registryd_malloc_trim()
            session = try loadAndWarmUp(path: path, manifest: manifest, options: options).session
        }
        return session!
    }

    /// A session and the run time of its second warm-up run (the first pays one-off costs).
    private func loadAndWarmUp(path: String, manifest: Manifest?, options: SessionOptions) throws(RegistryError) -> (session: Session, runSeconds: Double) {
        let session: Session
        do {
            session = try Session(path: path, environment: environment, options: options)
        } catch {
            throw RegistryError(.modelFailure, "onnx runtime cannot load it: \(error.message)")
        }
        // Heads or preprocessing contracts that do not fit the model fail the version before it
        // may serve, naming the key.
        if let heads = manifest?.heads, !heads.isEmpty {
            try HeadsServable.check(heads, outputs: session.outputs)
        }
        let contracts = try PreprocessServable.contracts(manifest?.preprocess ?? [:], inputs: session.inputs)
        let inputs: [String: Tensor]
        let what: String
        if let samples = manifest?.sampleInputs() {
            // Sample inputs are what clients send: raw where a contract says so, made into the
            // model's form the way a request's are.
            what = "warm-up run on the manifest's sample_inputs failed"
            do throws(RegistryError) {
                inputs = try PreprocessServable.prepare(samples, contracts)
            } catch {
                throw RegistryError(.modelFailure, "\(what): \(error.message)")
            }
        } else {
            do { inputs = try Loader.warmUpInputs(for: session) } catch {
                throw RegistryError(.modelFailure, "warm-up run failed: \(error.message)")
            }
            what = "warm-up run failed"
        }
        var seconds = 0.0
        for _ in 0..<2 {
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                _ = try session.run(inputs)
            } catch {
                throw RegistryError(.modelFailure, "\(what): \(error.message)")
            }
            seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        }
        return (session, seconds)
    }

    /// Zeros (empty strings) of each input's declared shape, with variable dimensions set to 1.
    static func warmUpInputs(for session: Session) throws(RuntimeError) -> [String: Tensor] {
        var inputs: [String: Tensor] = [:]
        for input in session.inputs {
            let shape = input.shape.map { $0.value < 0 ? 1 : $0.value }
            if input.elementType == .string {
                let count = try Tensor.elementCount(of: shape)
                inputs[input.name] = try Tensor(shape: shape, byteStrings: Array(repeating: [], count: count))
            } else {
                do {
                    inputs[input.name] = try Tensor(input.elementType, shape: shape) { bytes in
                        bytes.initializeMemory(as: UInt8.self, repeating: 0)
                    }
                } catch let error as RuntimeError {
                    throw error
                } catch {
                    throw RuntimeError(.invalidTensor, "\(error)")
                }
            }
        }
        return inputs
    }
}
