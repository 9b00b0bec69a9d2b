import Foundation
import Testing

/// The fuzz targets' committed corpora replayed through the same code the fuzzer drives (built
/// without libFuzzer): every seed and every input a fuzz run ever kept here must still parse or
/// be refused without a crash. scripts/fuzz runs the fuzzer itself.
@Suite("fuzz corpora")
struct FuzzCorpusTests {
    /// The executable that holds each target: the network's parsers link no C library.
    static func program(_ target: String) -> String {
        ["http", "v2"].contains(target) ? "registryd-fuzz" : "registryd-fuzz-registry"
    }

    @Test("every committed fuzz input is handled without a crash", arguments: ["http", "v2", "manifest", "config", "pipeline"])
    func replay(target: String) throws {
        let corpus = "\(repositoryRoot)/fuzz/corpus/\(target)"
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus)
        #expect(files.count >= 3, "the \(target) corpus has seeds")
        let program = FuzzCorpusTests.program(target)
        let result = try run(["\(repositoryRoot)/.build/debug/\(program)", target, corpus])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(program): \(target): \(files.count) inputs replayed, no crash"), "\(result.output)")
    }
}
