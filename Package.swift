// swift-tools-version: 6.0
// registryd: no package dependencies. Only the Swift toolchain and three system libraries
// (SQLite, OpenSSL's libcrypto and libssl, ONNX Runtime), each reached through one C module below.
// `scripts/setup.sh` installs the libraries and their pkg-config files.
import PackageDescription

let package = Package(
    name: "registryd",
    products: [
        .executable(name: "registryd", targets: ["registryd"]),
        .executable(name: "registryctl", targets: ["registryctl"]),
        .library(name: "Runtime", targets: ["Runtime"]),
        .library(name: "Registry", targets: ["Registry"]),
    ],
    dependencies: [],
    targets: [
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libssl",
            providers: [.apt(["libssl-dev"])]),
        // TLS clients for the load generator (registryd-bench) only: the daemon's OpenSSL is COpenSSL.
        .systemLibrary(
            name: "CBenchOpenSSL", pkgConfig: "libssl",
            providers: [.apt(["libssl-dev"])]),
        // Linux system calls Glibc leaves out (epoll, eventfd, accept4); header only.
        .systemLibrary(name: "CLinux"),
        .systemLibrary(
            name: "CONNXRuntime", pkgConfig: "libonnxruntime",
            providers: [.apt(["libonnxruntime-dev"])]),

        // The HTTP/1.1 codec and the control API's JSON types: no system calls, no C libraries,
        // so that registryctl links neither SQLite nor ONNX Runtime.
        .target(name: "Wire"),
        // Tensors, element types and signatures: plain Swift, no C, so that the v2 codec and
        // anything that only moves tensors around links no ONNX Runtime.
        .target(name: "Tensors"),
        // ONNX Runtime, and nothing about registries.
        .target(name: "Runtime", dependencies: ["Tensors", "CONNXRuntime"]),
        // The KServe v2 codec (JSON and Triton's binary extension, requests and responses): no
        // system calls, no C libraries; the v2 fuzz target exercises it alone.
        .target(name: "InferenceCodec", dependencies: ["Tensors", "Wire"]),
        // The daemon as a library. The status page and the catalog schema are compiled into the
        // binary as byte arrays (`PackageResources`), so that the installed daemon needs no file
        // beside it. Catalog/schema.sql is a link to the root schema.sql, the single source.
        .target(name: "Registry", dependencies: ["Runtime", "InferenceCodec", "Wire", "CSQLite", "COpenSSL", "CLinux"],
                resources: [.embedInCode("Control/StatusPage.html"), .embedInCode("Catalog/schema.sql")]),
        .executableTarget(name: "registryd", dependencies: ["Registry", "Wire"]),
        .executableTarget(name: "registryctl", dependencies: ["Wire"]),
        // The benchmarks' measuring tools (the in-process floor, a load generator over HTTP and HTTPS,
        // new connections per second): bench/run, bench/tls.py.
        .executableTarget(name: "registryd-bench", dependencies: ["Runtime", "Wire", "CBenchOpenSSL"]),
        // Fuzz targets for the parsers (scripts/fuzz): a corpus replayer in normal builds,
        // libFuzzer-driven when built with -sanitize=fuzzer and -D FUZZING. The network's
        // parsers (HTTP, v2) link no C library; manifests and configuration need Registry.
        .target(name: "FuzzDriver"),
        .executableTarget(name: "registryd-fuzz", dependencies: ["FuzzDriver", "InferenceCodec", "Wire"]),
        .executableTarget(name: "registryd-fuzz-registry", dependencies: ["FuzzDriver", "Registry"]),

        // Tests find their fixtures (Tests/Fixtures) relative to their own source file.
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "InferenceCodecTests", dependencies: ["InferenceCodec", "Tensors", "Wire"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "InferenceCodec", "Runtime", "Wire"]),
    ],
    swiftLanguageModes: [.v6]
)
