import Foundation
import Glibc
import Wire

/// A real HTTP/1.1 client for tests: a keep-alive connection over a Unix socket or TCP, with
/// Wire's response parser. Each instance is used by one thread.
final class HTTPTestClient {
    let fd: Int32
    private var parser = HTTPResponseParser()

    init(unixPath: String) throws {
        fd = try rawUnixConnect(unixPath)
    }

    init(tcpPort: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(tcpPort).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw TestFailure("connect to port \(tcpPort): \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func send(_ method: String, _ target: String, body: [UInt8]? = nil, headers: [(String, String)] = []) throws -> HTTPResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: test\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try writeAll(fd, Array(head.utf8) + (body ?? []))
        return try readResponse(method: method)
    }

    func json(_ method: String, _ target: String, _ body: String? = nil) throws -> (Int, [String: Any]) {
        let response = try send(method, target, body: body.map { Array($0.utf8) }, headers: body == nil ? [] : [("Content-Type", "application/json")])
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status, object)
    }

    func readResponse(method: String = "GET") throws -> HTTPResponse {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let response = try parser.next(requestMethod: method) { return response }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if let response = try parser.next(atEOF: true, requestMethod: method) { return response }
                throw TestFailure("connection closed without a response")
            }
            parser.append(Array(buffer[0..<n]))
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func rawUnixConnect(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8)
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let ok = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard ok == 0 else {
        let text = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("connect \(path): \(text)")
    }
    return fd
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw TestFailure("send: \(String(cString: strerror(errno)))") }
        offset += n
    }
}

/// Everything the peer sends until it closes (or `timeout` passes), as text.
func readUntilClose(_ fd: Int32, timeout: Double = 10) -> (text: String, closed: Bool) {
    var time = timeval(tv_sec: Int(timeout), tv_usec: Int(timeout.truncatingRemainder(dividingBy: 1) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { out += buffer[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        return (String(decoding: out, as: UTF8.self), n == 0 || errno == ECONNRESET)
    }
}

/// A v2 JSON body for one digits row.
func digitsBody(_ features: [Float], id: String? = nil) -> String {
    let data = features.map { String(Int($0)) }.joined(separator: ",")
    return "{" + (id.map { "\"id\":\"\($0)\"," } ?? "") + "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64],\"data\":[\(data)]}],\"outputs\":[{\"name\":\"label\"}]}"
}

/// The label a v2 JSON response carries.
func label(of response: HTTPResponse) -> Int64? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
          let outputs = object["outputs"] as? [[String: Any]], let data = outputs.first?["data"] as? [NSNumber] else { return nil }
    return data.first?.int64Value
}

func servedVersion(of response: HTTPResponse) -> Int? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else { return nil }
    return (object["model_version"] as? String).flatMap { Int($0) }
}
