import Foundation
import Glibc
import Testing
import Wire
@testable import Registry

/// registryctl, the real executable, against a real daemon on a temp socket.
@Suite("registryctl", .serialized)
struct RegistryctlTests {
    static let binary = "\(repositoryRoot)/.build/debug/registryctl"
    static let golden = "\(repositoryRoot)/Tests/Fixtures/golden"

    func ctl(_ registry: TestRegistry?, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let socket = registry.map { ["--socket", $0.config.controlSocket] } ?? []
        return try runSeparately([RegistryctlTests.binary] + socket + arguments, environment: ["PATH": "/usr/bin:/bin"])
    }

    /// Compares with a golden file (set REGISTRYD_UPDATE_GOLDEN=1 to rewrite them after a deliberate change).
    func expectGolden(_ text: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = "\(RegistryctlTests.golden)/\(name)"
        if ProcessInfo.processInfo.environment["REGISTRYD_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        let expected = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        #expect(text == expected, "differs from \(name):\n\(text)", sourceLocation: sourceLocation)
    }

    func registry() throws -> TestRegistry {
        let registry = TestRegistry(policies: ["digits": ModelPolicy(onNewVersion: .ready, keepPrevious: 2, requireSignature: false)])
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 2, bytes: modelBytes("digits_mlp.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 3, bytes: modelBytes("identity_float.onnx"))
        try dropAtomically(root: registry.root, model: "digits", version: 4, bytes: modelBytes("truncated.onnx"))
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())
        return registry
    }

    @Test("status shows a running rollout with its progress bar, as rollout status does; --watch refreshes; bad watch options are usage errors")
    func statusWatch() throws {
        let registry = try registry()
        let started = try ctl(registry, ["rollout", "start", "digits", "2", "--steps", "5,50,100", "--interval", "5m", "--reason", "test"])
        #expect(started.status == 0, "\(started.stderr)")
        let status = try ctl(registry, ["status"])
        #expect(status.status == 0)
        #expect(status.stdout.contains("rollout of version 2 against 1: running"), "\(status.stdout)")
        #expect(status.stdout.contains("[#.............................] 5%   step 1 of 3"), "\(status.stdout)")
        let rollout = try ctl(registry, ["rollout", "status", "digits"])
        #expect(rollout.stdout.contains("[#.............................] 5%   step 1 of 3"))

        let watch = try ctl(registry, ["status", "--watch", "--interval", "0.1", "--count", "3"])
        #expect(watch.status == 0)
        #expect(watch.stdout.components(separatedBy: "registryctl status --watch: ").count - 1 == 3, "\(watch.stdout)")
        #expect(!watch.stdout.contains("\u{1B}["), "no terminal escapes into a pipe")
        #expect(watch.stdout.components(separatedBy: "rollout of version 2").count - 1 == 3)

        let bad = try ctl(registry, ["status", "--count", "2"])
        #expect(bad.status == 64 && bad.stderr.contains("--interval and --count go with --watch"), "\(bad.stderr)")
        let zero = try ctl(registry, ["status", "--watch", "--interval", "0"])
        #expect(zero.status == 64 && zero.stderr.contains("--interval '0'"), "\(zero.stderr)")
        // With the daemon gone, --watch keeps going and says why.
        registry.stop()
        let down = try ctl(registry, ["status", "--watch", "--interval", "0.1", "--count", "2"])
        #expect(down.status == 0 && down.stdout.contains("cannot show the status:"), "\(down.stdout)")
    }

    @Test("help text of the tool and of every command matches its golden file; help exits 0")
    func help() throws {
        let top = try ctl(nil, ["--help"])
        #expect(top.status == 0)
        try expectGolden(top.stdout, "registryctl-help.txt")
        for command in ["status", "list", "versions", "show", "promote", "rollback", "alias", "split", "rollout", "shadow", "predict", "verify", "rescan", "reload", "history", "import"] {
            let result = try ctl(nil, [command, "--help"])
            #expect(result.status == 0, "\(command)")
            try expectGolden(result.stdout, "registryctl-\(command)-help.txt")
            #expect(try ctl(nil, ["help", command]).stdout == result.stdout)
        }
        #expect(try ctl(nil, ["rollout", "start", "-h"]).stdout.contains("USAGE: registryctl rollout start <model> <version>"))
        #expect(try ctl(nil, ["--version"]).stdout.hasPrefix("registryctl "))
    }

    @Test("usage mistakes print 'Error:', the usage and where to look, and exit 64", arguments: [
        (["promte", "digits", "2"], "usage-unknown-command.txt"),
        (["promote", "digits", "2", "--forse"], "usage-unknown-option.txt"),
        (["promote", "digits"], "usage-missing-argument.txt"),
        (["promote", "digits", "two"], "usage-bad-version.txt"),
        (["rollback", "digits", "--to"], "usage-missing-value.txt"),
        (["split", "digits", "3:90"], "usage-bad-split.txt"),
        (["versions", "digits", "extra"], "usage-unexpected-argument.txt"),
        ([], "usage-no-command.txt"),
    ])
    func usageErrors(arguments: [String], golden: String) throws {
        let result = try ctl(nil, arguments)
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        try expectGolden(result.stderr, golden)
    }

    @Test("a daemon that is not running gives one line naming the socket, exit 1")
    func notRunning() throws {
        let result = try runSeparately([RegistryctlTests.binary, "status"], environment: ["REGISTRY_SOCKET": "/tmp/registryd-test-nothing.sock"])
        #expect(result.status == 1)
        #expect(result.stderr == "Error: registryd is not running: nothing listens on '/tmp/registryd-test-nothing.sock' (no such file or directory)\n")
    }

    @Test("happy paths: status, list, versions, show, promote, rollback, alias, split, shadow, predict, verify, rescan, history, import")
    func happyPaths() throws {
        let registry = try registry()
        func ok(_ arguments: [String], _ fragments: [String]) throws {
            let result = try ctl(registry, arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            for fragment in fragments { #expect(result.stdout.contains(fragment), "\(arguments): missing '\(fragment)' in\n\(result.stdout)") }
        }
        try ok(["status"], ["digits: production 1", "VERSION  STATE", "1        live", "4        failed"])
        try ok(["list"], ["MODEL   PRODUCTION  VERSIONS  LOADED  SPLIT", "digits  1           4         3"])
        try ok(["versions", "digits"], ["2        ready   yes     0%"])
        try ok(["show", "digits@2"], ["state       ready", "input       input FP32 [-1,64]", "output      probabilities FP32 [-1,10]"])
        try ok(["show", "digits"], ["version     1", "aliases     production"])
        try ok(["promote", "digits", "2", "--reason", "mlp"], ["model 'digits': production is now version 2 (was 1)"])
        try ok(["rollback", "digits", "--reason", "regression"], ["model 'digits': rolled back to version 1 (was 2)"])
        try ok(["alias", "digits", "stable", "2"], ["alias 'stable' -> version 2"])
        try ok(["alias", "digits", "stable", "--remove"], ["alias 'stable' removed (was version 2)"])
        try ok(["split", "digits", "1=90", "2=10", "--reason", "canary"], ["traffic split 1=90,2=10"])
        try ok(["predict", "digits", "--routing-key", "k1", "--input", "input=" + (try digitsRow(0).0.map { String(Int($0)) }.joined(separator: ","))],
               ["label INT64 [1]: [\(try digitsRow(0).1)]", "split arm"])
        try ok(["split", "digits", "--clear"], ["split ended"])
        try ok(["shadow", "digits", "2", "--percent", "100", "--reason", "compare"], ["100% of requests mirrored to version 2"])
        try ok(["predict", "digits", "--input", "input=" + (try digitsRow(0).0.map { String(Int($0)) }.joined(separator: ","))], ["production"])
        #expect(registry.wait { registry.daemon!.lifecycle.mirror.reports()["digits"]?.runs == 1 } != nil)
        try ok(["shadow", "digits"], ["version 2 mirrors 100%: 1 mirrored, 0 dropped, 0 failed; top-1 agreement", "(1/1 rows of 'label')"])
        try ok(["status"], ["  shadow: version 2 mirrors 100%"])
        try ok(["shadow", "digits", "--off"], ["shadow ended"])
        try ok(["predict", "digits@2", "--input", "input=" + (try digitsRow(1).0.map { String(Int($0)) }.joined(separator: ","))],
               ["model digits version 2 (pinned", "[\(try digitsRow(1).2)]"])
        try ok(["verify"], ["3 checked, 0 failed"])
        try ok(["rescan"], ["rescanned"])
        try ok(["history", "digits", "--action", "promote,rollback"], ["promote", "rollback", "uid=\(getuid())", "regression"])
        try ok(["history", "--verify"], ["audit trail intact"])
        try ok(["history", "digits", "--at", APICoding.time(Date().timeIntervalSince1970)], ["was served by version 1"])
        try ok(["rollout", "start", "digits", "2", "--steps", "5,50,100", "--interval", "5m", "--max-error-rate", "0.02", "--min-requests", "100"],
               ["rollout of version 2 against 1: running", "5%   step 1 of 3 (5,50,100)", "error rate <= 0.02", "300 s per step"])
        try ok(["rollout", "status", "digits"], ["[#", "step 1 of 3"])
        try ok(["rollout", "pause", "digits"], ["paused"])
        try ok(["rollout", "resume", "digits"], ["running"])
        try ok(["rollout", "abort", "digits", "--reason", "demo"], ["aborted", "0%"])
        let imported = "\(registry.temp.path)/new.onnx"
        try modelBytes("digits_logreg.onnx", variant: 99).write(to: URL(fileURLWithPath: imported))
        try ok(["import", "digits", imported, "--wait"], ["as model 'digits' version 5", "state ready"])
        #expect(registry.record("digits", 5)?.state == .ready)
        // --json prints the API's JSON.
        let json = try ctl(registry, ["--json", "list"])
        #expect((try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) is [Any])
        let statusJSON = try ctl(registry, ["status", "--json"])
        #expect(((try? JSONSerialization.jsonObject(with: Data(statusJSON.stdout.utf8))) as? [String: Any])?["daemon"] != nil)
    }

    @Test("predict --top prints each score output's top classes with their names; --output picks outputs, heads included")
    func predictTop() throws {
        let registry = TestRegistry()
        try registry.makeModelDirectory("digits")
        try dropAtomically(root: registry.root, model: "digits", version: 1, bytes: modelBytes("digits_logreg.onnx"),
                           manifest: #"{"labels":{"probabilities":["zero","one","two","three","four","five","six","seven"]}}"#)
        try registry.makeModelDirectory("skin")
        try dropAtomically(root: registry.root, model: "skin", version: 1, bytes: modelBytes("skin_heads.onnx"),
                           manifest: try String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8))
        try registry.start()
        #expect(registry.daemon!.lifecycle.waitUntilIdle())

        let (features, label, _) = try digitsRow(0)
        let digits = try ctl(registry, ["predict", "digits", "--top", "2", "--input", "input=" + features.map { String(Int($0)) }.joined(separator: ",")])
        #expect(digits.status == 0, "\(digits.stderr)")
        // The [N] label output is not a score output: returned as it is.
        #expect(digits.stdout.contains("\n  label INT64 [1]: [\(label)]\n  probabilities top 2:\n    row 0: "), "\(digits.stdout)")
        #expect(label == 7 && digits.stdout.contains(" seven (class 7), "), "\(digits.stdout)")

        // The fixture's second row: skin type 4 and condition 1 come first (skin_heads_test.json).
        let skin = try ctl(registry, ["predict", "skin", "--top", "1", "--output", "condition", "--output", "skin_type", "--input", "input=10,6,14,7,7,7"])
        #expect(skin.status == 0, "\(skin.stderr)")
        #expect(skin.stdout.hasSuffix("\n  skin_type top 1:\n    row 0: 0.998793 sensitive (class 4)\n  condition top 1:\n    row 0: 12.156250 acne (class 1)\n"), "\(skin.stdout)")
        let raw = try ctl(registry, ["predict", "skin", "--output", "hair_type", "--input", "input=10,6,14,7,7,7"])
        #expect(raw.stdout.contains("\n  hair_type FP32 [1, 4]: [") && !raw.stdout.contains("logits"), "without --top, the values of that output alone: \(raw.stdout)")

        let zero = try ctl(registry, ["predict", "skin", "--top", "0", "--input", "input=1,2,3,4,5,6"])
        #expect(zero.status == 64 && zero.stderr.hasPrefix("Error: --top '0' is not a positive integer"), "\(zero.stderr)")
        let body = try ctl(registry, ["predict", "skin", "--top", "2", "--body", "-"])
        #expect(body.status == 64 && body.stderr.hasPrefix("Error: --top and --output build the request's outputs; with --body, write them in the body"), "\(body.stderr)")
        let unknown = try ctl(registry, ["predict", "skin", "--output", "nope", "--input", "input=1,2,3,4,5,6"])
        #expect(unknown.status == 1 && unknown.stderr == "Error: model 'skin' has no output 'nope' (outputs: logits, skin_type, hair_type, condition)\n", "\(unknown.stderr)")
    }

    @Test("command failures: unknown model, unknown version, incompatible signature, not ready, existing import; exit 1 with the daemon's message")
    func failures() throws {
        let registry = try registry()
        func fails(_ arguments: [String], _ message: String) throws {
            let result = try ctl(registry, arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr == "Error: \(message)\n", "\(arguments): \(result.stderr)")
        }
        try fails(["promote", "nope", "1"], "model 'nope' not found")
        try fails(["versions", "nope"], "model 'nope' not found")
        try fails(["promote", "digits", "9"], "model 'digits' version 9 not found")
        try fails(["show", "digits@9"], "model 'digits' version 9 not found")
        try fails(["promote", "digits", "3"], "model 'digits' version 3 is not compatible with production version 1: input 'input' is missing; use --force to promote anyway")
        let failed = try ctl(registry, ["promote", "digits", "4"])
        #expect(failed.status == 1 && failed.stderr.hasPrefix("Error: model 'digits' version 4 is failed ("), "\(failed.stderr)")
        try fails(["rollback", "digits"], "model 'digits' has no previous production version to roll back to; name one with --to VERSION")
        try fails(["split", "digits", "1=50", "2=40"], "weights must sum to 100, they sum to 90")
        try fails(["shadow", "digits", "3", "--percent", "20"], "model 'digits' version 3 cannot shadow production version 1: input 'input' is missing")
        try fails(["shadow", "digits"], "model 'digits' has no shadow in force")
        try fails(["rollout", "status", "digits"], "model 'digits' has no rollout")
        try fails(["rollout", "start", "digits", "3"], "model 'digits' version 3 is not compatible with production version 1: input 'input' is missing")
        let badSteps = try ctl(registry, ["rollout", "start", "digits", "2", "--steps", "1,x"])
        #expect(badSteps.status == 64 && badSteps.stderr.hasPrefix("Error: --steps '1,x' is not a comma-separated list of percents"))
        let imported = "\(registry.temp.path)/dup.onnx"
        try modelBytes("digits_logreg.onnx").write(to: URL(fileURLWithPath: imported))
        try fails(["import", "digits", imported, "--version", "2"], "model 'digits' version 2 already exists at '\(registry.root)/digits/2'; versions are immutable, pick another --version")
        try fails(["import", "digits", "/nonexistent.onnx"], "cannot read '/nonexistent.onnx'")
    }
}
