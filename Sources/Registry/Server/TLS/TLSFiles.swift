import Glibc

/// The PEM files that turn the TCP listener into HTTPS: `tls_certificate` (the server's
/// certificate, then any intermediates), `tls_private_key`, and `tls_client_ca` (the CA whose
/// client certificates mutual TLS accepts; nil leaves clients anonymous). Paths only: what the
/// files hold is read and checked by ``TLSContext/load(_:now:)``. A value type; `Sendable`.
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var privateKey: String
    public var clientCA: String?

    public init(certificate: String, privateKey: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.clientCA = clientCA
    }

    /// Loads and checks the files as the listener would, without listening
    /// (`registryd --check-config`); returns what the certificate says.
    public func check() throws(RegistryError) -> CertificateFacts {
        try TLSContext.load(self).certificate
    }

    /// Every file, in a fixed order, for ``identity()``.
    var paths: [String] { [certificate, privateKey] + (clientCA.map { [$0] } ?? []) }

    /// What the files are now, to notice a change without reading them: each file's device,
    /// inode, size and modification and change times, following symbolic links, so that a
    /// Kubernetes secret volume, which swaps its `..data` link and keeps the names, reads as
    /// changed. A missing file is `nil` (and a change when it comes back).
    func identity() -> [FileIdentity?] {
        paths.map(FileIdentity.init(path:))
    }
}

/// Enough of `stat(2)` to tell that a file was replaced or rewritten. A value type.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: timespec
    var changed: timespec

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim
        changed = info.st_ctim
    }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}
