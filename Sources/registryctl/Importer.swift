import Foundation
import Glibc

/// `registryctl import`: places a model file into the model root the way registryd expects
/// a careful deployer to: a hidden staging directory, the file written and fsynced, then one
/// rename into `<root>/<model>/<version>`.
enum Importer {
    static func importModel(root: String, model: String, file: String, manifest: String?, version explicit: Int?) throws(CommandFailure) -> Int {
        guard let first = model.unicodeScalars.first, CharacterSet.alphanumerics.contains(first),
              model.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }), !model.contains("..") else {
            throw CommandFailure(message: "'\(model)' is not a valid model name (letters, digits, '-', '_', '.'; starting with a letter or digit)")
        }
        guard let bytes = FileManager.default.contents(atPath: file) else { throw CommandFailure(message: "cannot read '\(file)'") }
        let manifestBytes: Data? = try manifest.map { (path: String) throws(CommandFailure) -> Data in
            guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure(message: "cannot read manifest '\(path)'") }
            return data
        }
        let modelDirectory = "\(root)/\(model)"
        do {
            try FileManager.default.createDirectory(atPath: modelDirectory, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(message: "cannot create '\(modelDirectory)': \(error.localizedDescription)")
        }
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: modelDirectory)) ?? []).compactMap { Int($0) }
        let version = explicit ?? ((existing.max() ?? 0) + 1)
        let destination = "\(modelDirectory)/\(version)"
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw CommandFailure(message: "model '\(model)' version \(version) already exists at '\(destination)'; versions are immutable, pick another --version")
        }
        let staging = "\(modelDirectory)/.import-\(version)-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
            try write(bytes, to: "\(staging)/model.onnx")
            if let manifestBytes { try write(manifestBytes, to: "\(staging)/manifest.json") }
            guard rename(staging, destination) == 0 else { throw CommandFailure(message: "cannot rename into '\(destination)': \(String(cString: strerror(errno)))") }
            let directory = open(modelDirectory, O_RDONLY | O_DIRECTORY)
            if directory >= 0 {
                fsync(directory)
                close(directory)
            }
        } catch let failure as CommandFailure {
            try? FileManager.default.removeItem(atPath: staging)
            throw failure
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw CommandFailure(message: "cannot import into '\(modelDirectory)': \(error.localizedDescription)")
        }
        return version
    }

    private static func write(_ data: Data, to path: String) throws(CommandFailure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CommandFailure(message: "cannot create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        let ok = data.withUnsafeBytes { raw -> Bool in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        guard ok, fsync(fd) == 0 else { throw CommandFailure(message: "cannot write '\(path)': \(String(cString: strerror(errno)))") }
    }
}
