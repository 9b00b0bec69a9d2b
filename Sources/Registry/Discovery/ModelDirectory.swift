import Foundation
import Glibc

/// One `model.onnx` found under the model root, with what `stat` said of it.
public struct ArtifactObservation: Sendable, Equatable {
    public var model: String
    public var version: Int
    /// `<root>/<model>/<version>/model.onnx`
    public var path: String
    public var size: Int64
    /// Modification time, seconds since 1970.
    public var mtime: Double
    public var inode: UInt64
    /// `manifest.json` beside the model, if present.
    public var manifestPath: String?
    /// The manifest's size, time and inode when it was seen: a change tells the next scan to
    /// read it again, since a manifest is part of the version's identity.
    public var manifestStamp: FileStamp?

    public var versionDirectory: String { (path as NSString).deletingLastPathComponent }
}

/// The model root as it is on disk: the full set of versions that should exist (TF Serving's
/// "aspired versions"), plus the entries that were refused and why.
///
/// Layout: `<root>/<model>/<version>/model.onnx`, version a positive integer written without
/// leading zeros, model a name that passes ``ModelName``. Names starting with '.' are ignored
/// silently (writers stage atomic renames under such names). Anything that resolves outside the
/// root (a symlink out, '..') is refused.
public struct ModelDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public struct Scan: Sendable, Equatable {
        public var artifacts: [ArtifactObservation] = []
        /// Refused entries, each a sentence naming the path and the reason.
        public var problems: [String] = []
    }

    public static let artifactName = "model.onnx"
    public static let manifestName = "manifest.json"

    /// Where a version's artifact is under this root (what a scan reports as its path).
    /// Where a version's artifact lives under this root: `file` is `model.onnx`, or
    /// `pipeline.json` for a pipeline.
    public func artifactPath(model: String, version: Int, file: String = ModelDirectory.artifactName) -> String {
        "\(root)/\(model)/\(version)/\(file)"
    }

    /// Whether the artifact at `path` is a pipeline's graph rather than a model.
    public static func isPipeline(_ path: String) -> Bool { path.hasSuffix("/\(PipelineSpec.fileName)") }

    /// Lists the root. Errors reading the root itself are thrown; problems with entries are
    /// collected, never thrown, so one bad entry cannot hide the good ones.
    public func scan() throws(RegistryError) -> Scan {
        guard let realRoot = ModelDirectory.realPath(root) else {
            throw RegistryError(.system, "model root '\(root)' cannot be read: \(String(cString: strerror(errno)))")
        }
        var scan = Scan()
        for model in ModelDirectory.entries(of: root) where !model.hasPrefix(".") {
            let modelPath = "\(root)/\(model)"
            guard ModelName.isValid(model) else {
                scan.problems.append("'\(modelPath)' is not a valid model name (\(ModelName.rule)); ignored")
                continue
            }
            guard ModelDirectory.isDirectory(modelPath) else { continue }
            guard ModelDirectory.inside(modelPath, realRoot) else {
                scan.problems.append("'\(modelPath)' resolves outside the model root; refused")
                continue
            }
            for entry in ModelDirectory.entries(of: modelPath) where !entry.hasPrefix(".") {
                let versionPath = "\(modelPath)/\(entry)"
                guard ModelDirectory.isDirectory(versionPath) else { continue }
                guard let version = Int(entry), version > 0, String(version) == entry else {
                    scan.problems.append("'\(versionPath)' is not a version (a positive integer without leading zeros); ignored")
                    continue
                }
                guard ModelDirectory.inside(versionPath, realRoot) else {
                    scan.problems.append("'\(versionPath)' resolves outside the model root; refused")
                    continue
                }
                // A version is a model (`model.onnx`) or a pipeline (`pipeline.json`), never both.
                let modelFile = "\(versionPath)/\(ModelDirectory.artifactName)"
                let pipelineFile = "\(versionPath)/\(PipelineSpec.fileName)"
                var info = stat()
                let hasModel = stat(modelFile, &info) == 0
                var pipelineInfo = stat()
                let hasPipeline = stat(pipelineFile, &pipelineInfo) == 0
                if hasModel && hasPipeline {
                    scan.problems.append("'\(versionPath)' holds both \(ModelDirectory.artifactName) and \(PipelineSpec.fileName); a version is one or the other: refused")
                    continue
                }
                guard hasModel || hasPipeline else { continue }  // not there yet: nothing to admit
                let artifact = hasModel ? modelFile : pipelineFile
                if !hasModel { info = pipelineInfo }
                guard ModelDirectory.inside(artifact, realRoot) else {
                    scan.problems.append("'\(artifact)' resolves outside the model root; refused")
                    continue
                }
                guard (info.st_mode & S_IFMT) == S_IFREG else {
                    scan.problems.append("'\(artifact)' is not a regular file; refused")
                    continue
                }
                let manifest = "\(versionPath)/\(ModelDirectory.manifestName)"
                scan.artifacts.append(ArtifactObservation(
                    model: model, version: version, path: artifact, size: Int64(info.st_size),
                    mtime: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9,
                    inode: UInt64(info.st_ino),
                    manifestPath: access(manifest, F_OK) == 0 ? manifest : nil,
                    manifestStamp: ModelDirectory.stamp(of: manifest)))
            }
        }
        scan.artifacts.sort { ($0.model, $0.version) < ($1.model, $1.version) }
        return scan
    }

    /// `stat` of one artifact now, to notice a file that changed while it was being hashed.
    /// A file's size, modification time and inode, or nil when it is not there.
    public static func stamp(of path: String) -> FileStamp? {
        identity(of: path).map { FileStamp(size: $0.size, mtime: $0.mtime, inode: $0.inode) }
    }

    public static func identity(of path: String) -> (size: Int64, mtime: Double, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (Int64(info.st_size), Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9, UInt64(info.st_ino))
    }

    static func entries(of path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path`, with every symlink resolved, is inside `realRoot`.
    static func inside(_ path: String, _ realRoot: String) -> Bool {
        guard let real = realPath(path) else { return false }
        return real == realRoot || real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/")
    }
}

/// What a file looked like when seen: equal stamps mean it was not rewritten in between (as far
/// as the file system tells without reading it).
public struct FileStamp: Sendable, Equatable {
    public var size: Int64
    public var mtime: Double
    public var inode: UInt64
}
