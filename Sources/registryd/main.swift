import Foundation
import Glibc
import Registry
import Wire

// registryd: read the configuration, start, serve until SIGTERM or SIGINT, stop cleanly.

let usage = """
OVERVIEW: registryd, the model registry and lifecycle daemon.

USAGE: registryd [--config DIR] [options]
       registryd --check-config [--config DIR]

SIGNALS:
  SIGTERM, SIGINT       Stop: refuse new connections, finish requests in flight (10 s at most),
                        wait for a model load in progress (10 s at most; an unfinished one is
                        admitted again at the next start), flush statistics, close the
                        catalog, exit 0.
  SIGHUP                Re-read the configuration and the TLS certificate files. A bad edit is
                        refused with the reason in the log, and the configuration in force stays.

Under systemd (Type=notify) it reports READY=1 once its models are loaded, RELOADING=1 and
READY=1 around a reload, and STOPPING=1 on SIGTERM, over $NOTIFY_SOCKET.

OPTIONS:
  --config DIR          The configuration directory (default: /etc/registry.d).
  --model-root DIR      Override model_root.
  --database FILE       Override database (the SQLite catalog).
  --socket PATH         Override control_socket.
  --listen HOST:PORT    Override listen (the TCP listener for inference).
  --log-level LEVEL     debug, info, notice, warning or error.
  --log-format FORMAT   text or json.
  --check-config        Validate the configuration and exit.
  --version             Show the version.
  -h, --help            Show help information.

"""
let version = "registryd \(Daemon.version)"

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    if code == 64 { FileHandle.standardError.write(Data("See 'registryd --help'.\n".utf8)) }
    exit(code)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var configDirectory = "/etc/registry.d"
var overrides: [String: String] = [:]
var checkOnly = false
let valueOptions = ["--config", "--model-root", "--database", "--socket", "--listen", "--log-level", "--log-format"]
while !arguments.isEmpty {
    let argument = arguments.removeFirst()
    switch argument {
    case "-h", "--help":
        print(usage, terminator: "")
        exit(0)
    case "--version":
        print(version)
        exit(0)
    case "--check-config":
        checkOnly = true
    case _ where valueOptions.contains(argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""):
        var name = argument
        var value: String
        if let eq = argument.firstIndex(of: "=") {
            name = String(argument[..<eq])
            value = String(argument[argument.index(after: eq)...])
        } else {
            guard !arguments.isEmpty else { fail("missing value for '\(name)'", code: 64) }
            value = arguments.removeFirst()
        }
        if name == "--config" { configDirectory = value } else { overrides[name] = value }
    default:
        let known = valueOptions + ["--check-config", "--help", "--version"]
        var message = "unknown option '\(argument)'"
        if let guess = Suggestion.closest(to: argument, among: known) {
            message += "; did you mean '\(guess)'?"
        }
        fail(message, code: 64)
    }
}

// Values the command line gets wrong are usage errors (64), before any file is read.
if let problem = ConfigSource.overrideProblem(overrides) { fail(problem, code: 64) }
let source = ConfigSource(directory: configDirectory, overrides: overrides)
let config: DaemonConfig
do {
    config = try source.load()
} catch {
    fail("\(error)", code: 78)  // EX_CONFIG
}

if checkOnly {
    var tls = ""
    if let files = config.tlsFiles {
        // The certificate files are checked as a start would check them (the exit code is a start's).
        do {
            let certificate = try files.check()
            tls = ", TLS certificate \(certificate.subject) valid until \(Date(timeIntervalSince1970: TimeInterval(certificate.notAfter)))"
        } catch {
            fail("\(error)", code: 78)
        }
    }
    print("configuration OK: \(configDirectory) (model root \(config.modelRoot), catalog \(config.database), \(config.policies.count) model policies\(tls))")
    exit(0)
}

let log = Log(level: config.logLevel, format: config.logFormat)
let notifier = ServiceNotifier()
/// The daemon once started; the signal handlers stop or reload it. `nonisolated(unsafe)` is
/// sound here: it is written once, on the main thread before `dispatchMain()`, and read only by
/// those handlers, which run on the main queue after `dispatchMain()` starts serving it.
nonisolated(unsafe) var running: Daemon?
// Signals are delivered to a dispatch source, not to an async-signal handler. They are set up
// before the daemon starts: a SIGTERM that arrives while models load waits on the main queue and
// stops the daemon as soon as it has started, instead of killing it mid-write. A parent may
// have started us with them blocked (a mask inherited from a thread that blocks signals, as
// dispatch worker threads do): unblock them, or SIGTERM would stay pending forever.
var handled = sigset_t()
sigemptyset(&handled)
for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, sig) }
pthread_sigmask(SIG_UNBLOCK, &handled, nil)
for sig in [SIGTERM, SIGINT, SIGHUP] { signal(sig, SIG_IGN) }
// A client that hangs up mid-response must not kill the daemon (sends also use MSG_NOSIGNAL).
signal(SIGPIPE, SIG_IGN)
var sources: [DispatchSourceSignal] = []
for sig in [SIGTERM, SIGINT] {
    let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
    source.setEventHandler {
        notifier.notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight")
        log.notice("registryd stopping", ["signal": sig == SIGTERM ? "SIGTERM" : "SIGINT"])
        running?.stop(deadline: 10)
        log.notice("registryd stopped")
        exit(0)
    }
    source.resume()
    sources.append(source)
}
let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .main)
hangup.setEventHandler {
    guard let daemon = running else { return }
    notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(ServiceNotifier.monotonicMicroseconds())")
    log.notice("configuration reload requested", ["signal": "SIGHUP", "config": configDirectory])
    // The outcome (applied, or refused with the reason) is logged by `reload`.
    _ = try? daemon.reload(actor: "signal SIGHUP")
    notifier.notify("READY=1\nSTATUS=\(daemon.summary())")
}
hangup.resume()
let daemon: Daemon
do {
    daemon = try Daemon(config: config, log: log, source: source)
    try daemon.start()
    running = daemon
} catch {
    log.error("registryd cannot start", ["error": "\(error)"])
    fail("\(error)", code: 1)
}

log.notice("registryd ready", [
    "control_socket": config.controlSocket,
    "listen": daemon.tcpPort.map { port in (config.listen.map { String($0[..<($0.lastIndex(of: ":") ?? $0.endIndex)]) } ?? "") + ":\(port)" } ?? "off",
    "tls": config.tlsFiles.map { $0.clientCA == nil ? "on" : "mutual" } ?? "off",
    "model_root": config.modelRoot, "catalog": config.database, "models": daemon.summary(),
])

if !FaultInjection.armed.isEmpty {
    log.warning("fault injection armed (REGISTRYD_FAULT_KILL_AT, REGISTRYD_FAULT_LOAD_DELAY, REGISTRYD_FAULT_LOAD_DELAY_WHILE): for tests only",
                ["faults": FaultInjection.armed.joined(separator: ",")])
}

notifier.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=\(daemon.summary())")

dispatchMain()
