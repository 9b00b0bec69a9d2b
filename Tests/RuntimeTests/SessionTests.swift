import Foundation
import Testing
import Runtime

@Suite("Sessions")
struct SessionTests {
    @Test("the digits classifier gives exactly scikit-learn's labels on the whole test split")
    func digitsMatchScikitLearn() throws {
        let digits = try Fixtures.digits()
        let env = try Fixtures.environment()
        for (file, expected) in [("digits_logreg.onnx", digits.logreg_predictions), ("digits_mlp.onnx", digits.mlp_predictions)] {
            let session = try Session(path: Fixtures.model(file), environment: env)
            let rows = digits.features.count
            let input = try Tensor(shape: [rows, 64], scalars: digits.features.flatMap { $0 })
            let labels = try #require(try session.run(["input": input], outputs: ["label"])["label"])
            let predicted = try labels.scalars(as: Int64.self)
            #expect(predicted == expected, "\(file) disagrees with scikit-learn")
            let correct = zip(predicted, digits.labels).filter { $0 == $1 }.count
            print("\(file): accuracy \(correct)/\(rows) = \(String(format: "%.4f", Double(correct) / Double(rows))) on the digits test split")
        }
    }

    @Test("the two digits classifiers agree on most but not all of the test split")
    func classifiersDiffer() throws {
        let digits = try Fixtures.digits()
        let agree = zip(digits.logreg_predictions, digits.mlp_predictions).filter { $0 == $1 }.count
        #expect(agree == digits.agreement)
        #expect(agree < digits.labels.count && agree > digits.labels.count * 9 / 10)
    }

    @Test("signatures report names, element types and fixed, named and unnamed dimensions")
    func signature() throws {
        let session = try Session(path: Fixtures.model("multi_io.onnx"), environment: Fixtures.environment())
        #expect(session.inputs.map(\.name) == ["a", "b", "c"])
        #expect(session.inputs.map(\.elementType) == [.float, .float, .int64])
        #expect(session.inputs[0].shape == [.variable(name: "N"), .fixed(3)])
        #expect(session.inputs[0].shape.map(\.value) == [-1, 3])
        #expect(session.outputs.map(\.name).sorted() == ["c_out", "product", "sum"])
        #expect(session.metadata.producerName == "registryd-fixtures")
        #expect(session.metadata.version == 7)
        #expect(session.metadata.description == "multi input/output fixture")
        #expect(session.metadata.custom == ["author": "registryd", "purpose": "tests"])

        let batch = try Session(path: Fixtures.model("symbolic_batch.onnx"), environment: Fixtures.environment())
        #expect(batch.inputs[0].shape == [.variable(name: "batch"), .fixed(4)])
    }

    @Test("several inputs and requested outputs: only what was asked for comes back")
    func multipleInputsAndOutputs() throws {
        let session = try Session(path: Fixtures.model("multi_io.onnx"), environment: Fixtures.environment())
        let a = try Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6))
        let b = try Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 10, 20, 30, 40, 50, 60))
        let c = try Tensor(shape: [2], scalars: [Int64](arrayLiteral: 7, -7))
        let all = try session.run(["a": a, "b": b, "c": c])
        #expect(Set(all.keys) == ["sum", "product", "c_out"])
        #expect(try all["sum"]?.scalars(as: Float.self) == [11, 22, 33, 44, 55, 66])
        #expect(try all["product"]?.scalars(as: Float.self) == [10, 40, 90, 160, 250, 360])
        #expect(try all["c_out"]?.scalars(as: Int64.self) == [7, -7])
        let some = try session.run(["a": a, "b": b, "c": c], outputs: ["product"])
        #expect(Array(some.keys) == ["product"])
    }

    @Test("symbolic batch dimensions accept any batch size")
    func symbolicBatch() throws {
        let session = try Session(path: Fixtures.model("symbolic_batch.onnx"), environment: Fixtures.environment())
        for rows in [1, 5, 64] {
            let values = (0..<(rows * 4)).map(Float.init)
            let y = try session.run(["x": Tensor(shape: [rows, 4], scalars: values)])["y"]
            #expect(y?.shape == [rows, 4])
            #expect(try y?.scalars(as: Float.self) == values.map { $0 * 2 })
        }
    }

    @Test("a session loads from bytes as from a path")
    func fromBytes() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.model("digits_logreg.onnx")))
        let session = try data.withUnsafeBytes { try Session(bytes: $0, environment: Fixtures.environment()) }
        #expect(session.inputs.first?.name == "input")
        #expect(session.outputs.map(\.name).contains("label"))
    }

    @Test("8 threads running one session concurrently give the same outputs as one thread")
    func concurrentRuns() async throws {
        let digits = try Fixtures.digits()
        let session = try Session(path: Fixtures.model("digits_mlp.onnx"), environment: Fixtures.environment())
        let rows = digits.features.map { try! Tensor(shape: [1, 64], scalars: $0) }
        let reference = try rows.map { try session.run(["input": $0])["probabilities"]!.scalars(as: Float.self) }
        let tally = Tally()
        // Threads of our own: Run blocks, so it stays off Swift's cooperative pool.
        let done = DispatchGroup()
        for t in 0..<8 {
            done.enter()
            Thread {
                for round in 0..<5 {
                    for (i, row) in rows.enumerated() where (i + t + round) % 2 == 0 {
                        do {
                            let out = try session.run(["input": row])["probabilities"]!.scalars(as: Float.self)
                            tally.record(out == reference[i] ? nil : "row \(i) differs")
                        } catch {
                            tally.record("\(error)")
                        }
                    }
                }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(tally.runs == 8 * 5 * rows.count / 2)
        #expect(tally.problems == [])
    }

    @Test("20,000 runs do not grow resident memory by more than a few MB")
    func noLeak() throws {
        let session = try Session(path: Fixtures.model("multi_io.onnx"), environment: Fixtures.environment())
        let strings = try Session(path: Fixtures.model("identity_string.onnx"), environment: Fixtures.environment())
        let a = try Tensor(shape: [4, 3], scalars: [Float](repeating: 1.5, count: 12))
        let c = try Tensor(shape: [4], scalars: [Int64](repeating: 3, count: 4))
        let s = try Tensor(shape: [1, 4], strings: ["alpha", "beta", "gamma", "delta"])
        func batch(_ n: Int) throws {
            for _ in 0..<n {
                let out = try session.run(["a": a, "b": a, "c": c])
                _ = try out["sum"]!.scalars(as: Float.self)
                _ = try strings.run(["x": s])["y"]!.byteStrings()
            }
        }
        try batch(2_000)  // warm up: arenas and caches reach their steady size
        let before = Fixtures.residentBytes()
        try batch(20_000)
        let after = Fixtures.residentBytes()
        let growth = Double(after - before) / 1_048_576
        print("leak check: resident \(before / 1_048_576) MB -> \(after / 1_048_576) MB over 20,000 runs (growth \(String(format: "%.2f", growth)) MB)")
        #expect(growth < 4)
    }
}

import Synchronization

/// Counts runs and collects problems from many threads.
final class Tally: Sendable {
    private let state = Mutex<(runs: Int, problems: [String])>((0, []))
    func record(_ problem: String?) {
        state.withLock { state in
            state.runs += 1
            if let problem { state.problems.append(problem) }
        }
    }
    var runs: Int { state.withLock { $0.runs } }
    var problems: [String] { state.withLock { $0.problems } }
}
