import Foundation
import Runtime

/// Paths of the committed fixtures (made by scripts/make_fixtures.py), found from this file's
/// location so that tests need no bundle resources and no Python.
enum Fixtures {
    static let models: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models").path
    }()

    static func model(_ name: String) -> String { "\(models)/\(name)" }

    /// The shared environment of the test process: one per process, as ONNX Runtime requires.
    static func environment() throws -> Environment {
        do {
            return try Environment.shared()
        } catch {
            throw RuntimeError(
                error.code,
                "\(error.message). ONNX Runtime is installed by scripts/setup.sh (run it as root)")
        }
    }

    /// The digits test split and scikit-learn's own predictions, saved by the fixture script.
    struct Digits: Decodable {
        let features: [[Float]]
        let labels: [Int64]
        let logreg_predictions: [Int64]
        let mlp_predictions: [Int64]
        let agreement: Int
    }

    static func digits() throws -> Digits {
        let data = try Data(contentsOf: URL(fileURLWithPath: model("digits_test.json")))
        return try JSONDecoder().decode(Digits.self, from: data)
    }

    /// Resident set size of this process, in bytes, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
