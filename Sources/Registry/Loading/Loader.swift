import Foundation
import Runtime

/// Turns a verified artifact into a warmed-up ONNX Runtime session. Runs on the loader's own
/// thread, never on serving threads.
public struct Loader: Sendable {
    public let environment: Environment
    public let options: SessionOptions
    /// Models smaller than this many bytes run on the calling thread alone (their own session
    /// options, one intra-op thread) instead of the environment's shared thread pool. For a
    /// small model the pool buys no parallelism, and two runs sharing it wait on each other:
    /// measured, a shadow version's runs in the pool slowed the serving version's runs
    /// (bench/run --only shadow). Larger models share the pool. 0 sends every model to the pool.
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

    /// Loads `path` and runs it once, on the manifest's sample inputs when it has them, else on
    /// inputs made from its signature, so that a model that loads but cannot run is caught
    /// before it serves.
    public func load(path: String, manifest: Manifest? = nil) throws(RegistryError) -> Session {
        FaultInjection.delayLoad()
        let session: Session
        do {
            session = try Session(path: path, environment: environment, options: options(for: path))
        } catch {
            throw RegistryError(.modelFailure, "onnx runtime cannot load it: \(error.message)")
        }
        if let samples = manifest?.sampleInputs() {
            do {
                _ = try session.run(samples)
            } catch {
                throw RegistryError(.modelFailure, "warm-up run on the manifest's sample_inputs failed: \(error.message)")
            }
            return session
        }
        do {
            _ = try session.run(Loader.warmUpInputs(for: session))
        } catch {
            throw RegistryError(.modelFailure, "warm-up run failed: \(error.message)")
        }
        return session
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
