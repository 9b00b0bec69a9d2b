import Foundation
import FuzzDriver
import Registry

// registryd-fuzz-registry: the fuzz targets for the files an operator or a model's team writes,
// which Registry parses (scripts/fuzz; FuzzDriver says how it is built and run):
//
//   manifest  manifest.json.
//   config    registryd.json and a model policy file.
//   pipeline  pipeline.json.
//
// The HTTP parser and the v2 codec have their own executable (registryd-fuzz), which links no
// C library.

let driver = FuzzDriver(program: "registryd-fuzz-registry", targets: [
    "manifest": { bytes in _ = try? Manifest.parse(file: "manifest.json", data: Data(bytes)) },
    "pipeline": { bytes in _ = try? PipelineSpec.parse(file: "pipeline.json", data: Data(bytes)) },
    "config": { bytes in
        _ = try? DaemonConfig.parse(mainFile: "registryd.json", data: Data(bytes), base: URL(fileURLWithPath: "/etc/registry.d"))
        _ = try? ModelPolicy.parse(file: "models/m.json", data: Data(bytes), trustedKeys: ["k": String(repeating: "A", count: 43) + "="])
    },
])

#if FUZZING
/// SwiftPM links an executable target's main as `<target>_main`: hand control to libFuzzer.
@_cdecl("registryd_fuzz_registry_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    driver.fuzz(argc: argc, argv: argv)
}
#else
@main
struct Replay {
    static func main() { driver.replay(Array(CommandLine.arguments.dropFirst())) }
}
#endif
