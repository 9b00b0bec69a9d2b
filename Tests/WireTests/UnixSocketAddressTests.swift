import Glibc
import Testing
import Wire

@Suite("Unix socket address")
struct UnixSocketAddressTests {
    /// The bytes of `sun_path` as `withSockaddr` hands them to the kernel, up to the length.
    private func pathBytes(_ address: UnixSocketAddress) -> [UInt8] {
        address.withSockaddr { pointer, length in
            let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            let raw = UnsafeRawPointer(pointer)
            #expect(raw.load(as: sa_family_t.self) == sa_family_t(AF_UNIX))
            return Array(UnsafeRawBufferPointer(start: raw + offset, count: Int(length) - offset))
        }
    }

    @Test("a path is laid out with its terminating zero, and the length counts that zero")
    func path() {
        let address = UnixSocketAddress(path: "/run/registryd/registryd.sock")
        #expect(address.map(pathBytes) == Array("/run/registryd/registryd.sock".utf8) + [0])
    }

    @Test("an abstract name starts with a zero byte and its length counts exactly its bytes")
    func abstract() {
        let address = UnixSocketAddress(abstractName: "registryd/notify")
        #expect(address.map(pathBytes) == [0] + Array("registryd/notify".utf8))
    }

    @Test("107 bytes of path fit, 108 do not")
    func limit() {
        #expect(UnixSocketAddress.maxPathBytes == 107)
        #expect(UnixSocketAddress(path: "/" + String(repeating: "a", count: 106)) != nil)
        #expect(UnixSocketAddress(path: "/" + String(repeating: "a", count: 107)) == nil)
    }
}
