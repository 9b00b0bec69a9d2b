import Foundation
import Testing

/// The examples work against a real daemon: the FastAPI backend of examples/python-backend
/// (its own unittest suite, run by its run-e2e.sh on a scratch registryd built by this run).
@Suite("examples", .serialized)
struct ExamplesTests {
    @Test("examples/python-backend: the FastAPI app predicts through registryd's socket, JSON and binary, with scikit-learn's labels")
    func pythonBackend() throws {
        let script = "\(repositoryRoot)/examples/python-backend/run-e2e.sh"
        let result = try run(["/bin/bash", script], environment: ProcessInfo.processInfo.environment.merging([
            "REGISTRYD": "\(repositoryRoot)/.build/debug/registryd",
            "VENV": "\(repositoryRoot)/.venv-example",
        ]) { $1 })
        #expect(result.status == 0, "\(result.output.suffix(4000))")
        #expect(result.output.contains("\nOK"), "\(result.output.suffix(2000))")
        let ran = result.output.range(of: #"Ran [0-9]+ tests"#, options: .regularExpression).map { String(result.output[$0]) } ?? "none"
        #expect(ran == "Ran 13 tests", "\(ran)")
    }
}
