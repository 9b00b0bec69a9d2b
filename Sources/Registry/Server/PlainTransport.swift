import Glibc

/// A ``Transport`` straight over a socket's file descriptor: `read`, `send` with
/// `MSG_NOSIGNAL`, `poll` for writability. The only code in the server that reads or writes a
/// connection's socket.
///
/// Thread-safety: a descriptor and no state of its own; each call is one system call (or a
/// retry of it) that the kernel makes safe from any thread, so the reaper's `shutdown` and the
/// stop's peek may run beside the owner's calls.
struct PlainTransport: Transport {
    let descriptor: Int32

    /// Takes over `descriptor`, an accepted, non-blocking socket; ``close()`` releases it.
    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        let n = Socket.retrying { Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
        if n > 0 { return .transferred(n) }
        return n < 0 && errno == EAGAIN ? .wouldBlock : .closed
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        let n = Socket.retrying { send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { return .transferred(n) }
        return n < 0 && errno == EAGAIN ? .wouldBlock : .closed
    }

    func waitUntilWritable(timeout: Double) -> Bool {
        var request = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&request, 1, Int32(timeout * 1000))
        // Interrupted: the caller writes again, which either progresses or waits anew.
        return ready > 0 || (ready < 0 && errno == EINTR)
    }

    func hasPendingInput() -> Bool {
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    func shutdownReading() {
        shutdown(descriptor, Int32(SHUT_RD))
    }

    func close() {
        _ = Glibc.close(descriptor)
    }

    /// A plain socket has no handshake, never waits to write before it reads, and no certificate.
    var isHandshaking: Bool { false }
    var needsWritable: Bool { false }
    var peerSubject: String? { nil }
}
