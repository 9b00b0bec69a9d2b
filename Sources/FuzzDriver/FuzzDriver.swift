import Foundation

/// What the fuzz executables share: a table of named targets, a corpus replayer for normal builds
/// and libFuzzer's driver for fuzzing builds (`-sanitize=fuzzer` and `-D FUZZING`).
///
/// Two executables use it so that each links only what its targets parse: `registryd-fuzz`
/// (the HTTP parser and the v2 codec: Wire and InferenceCodec, no C library) and
/// `registryd-fuzz-registry` (manifests and configuration files, which live in Registry).
/// A target never decides pass or fail by itself: a crash, a sanitizer report, a timeout or a
/// broken invariant (preconditionFailure) is the finding.
public struct FuzzDriver: Sendable {
    public let program: String
    public let targets: [String: @Sendable ([UInt8]) -> Void]

    public init(program: String, targets: [String: @Sendable ([UInt8]) -> Void]) {
        self.program = program
        self.targets = targets
    }

    var names: String { targets.keys.sorted().joined(separator: "|") }

    /// `PROGRAM TARGET FILE|DIR...`: runs every file through the target; the test suite replays
    /// the committed corpora this way. Exits 64 on a usage error, 66 for a missing path.
    public func replay(_ arguments: [String]) -> Never {
        guard let name = arguments.first, let target = targets[name], arguments.count > 1 else {
            print("USAGE: \(program) (\(names)) FILE|DIR...")
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("\(program): no such file or directory '\(path)'")
                exit(66)
            }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target(Array(data))
                count += 1
            }
        }
        print("\(program): \(name): \(count) inputs replayed, no crash")
        exit(0)
    }

    #if FUZZING
    /// Hands control to libFuzzer, which calls the target named by `REGISTRYD_FUZZ_TARGET` with
    /// each input it makes.
    public func fuzz(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        guard let name = ProcessInfo.processInfo.environment["REGISTRYD_FUZZ_TARGET"], let target = targets[name] else {
            FileHandle.standardError.write(Data("\(program): set REGISTRYD_FUZZ_TARGET to one of: \(names)\n".utf8))
            exit(64)
        }
        FuzzDriver.current = target
        var count = argc
        var vector = argv
        return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzOne(data, size) }
    }

    /// The target libFuzzer drives; set once, before the driver starts, and only read after.
    nonisolated(unsafe) static var current: (([UInt8]) -> Void)?
    #endif
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzDriver.current?(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// libFuzzer's entry point for programs that keep their own main.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt
#endif
