import Foundation
import Glibc
import Wire

/// One HTTP/1.1 exchange with registryd over its Unix socket.
struct Client {
    let socketPath: String

    /// A failure to reach the daemon, as one line that names the socket.
    static func unreachable(_ path: String, _ code: Int32) -> CommandFailure {
        switch code {
        case ENOENT, ECONNREFUSED:
            return CommandFailure(message: "registryd is not running: nothing listens on '\(path)' (\(String(cString: strerror(code)).lowercased()))")
        case EACCES, EPERM:
            return CommandFailure(message: "permission denied on control socket '\(path)': ask for membership of its group, or use sudo")
        default:
            return CommandFailure(message: "cannot connect to registryd at '\(path)': \(String(cString: strerror(code)))")
        }
    }

    func send(_ method: String, _ target: String, body: [UInt8]? = nil, headers extra: [(String, String)] = [], timeout: Int = 300) throws(CommandFailure) -> HTTPResponse {
        guard let address = UnixSocketAddress(path: socketPath) else {
            throw CommandFailure(message: "socket path '\(socketPath)' is longer than \(UnixSocketAddress.maxPathBytes) bytes")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandFailure(message: "socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let connected = address.withSockaddr { connect(fd, $0, $1) }
        guard connected == 0 else { throw Client.unreachable(socketPath, errno) }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var head = "\(method) \(target) HTTP/1.1\r\nHost: registryd\r\nUser-Agent: registryctl\r\nConnection: close\r\n"
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        if let body {
            if !extra.contains(where: { $0.0.lowercased() == "content-type" }) { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        let request = Array(head.utf8) + (body ?? [])
        var offset = 0
        while offset < request.count {
            let n = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, request.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CommandFailure(message: "lost the connection to registryd while sending: \(String(cString: strerror(errno)))") }
            offset += n
        }
        var parser = HTTPResponseParser()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                let why = errno == EAGAIN ? "no answer within \(timeout) s" : String(cString: strerror(errno))
                throw CommandFailure(message: "lost the connection to registryd: \(why)")
            }
            if n > 0 { buffer.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            do {
                if let response = try parser.next(atEOF: n == 0, requestMethod: method) { return response }
            } catch {
                throw CommandFailure(message: "registryd sent a malformed response: \(error.message)")
            }
            if n == 0 { throw CommandFailure(message: "registryd closed the connection without answering") }
        }
    }

    /// Calls an endpoint of ``ControlEndpoints``: the table's value builds the request (method,
    /// escaped path and query, body), and its response type decodes a 2xx answer; a daemon error
    /// becomes its message. Returns the answer and its raw JSON (for `--json`).
    func call<Body, Response>(_ endpoint: Endpoint<Body, Response>, _ parameters: PathParameters = [:], query: [(String, String?)] = [],
                              body: Body) throws(CommandFailure) -> (Response, [UInt8]) {
        try decode(send(endpoint.request(parameters, query: query, body: body)), as: Response.self)
    }

    /// Calls an endpoint that takes no body (the `GET`s).
    func call<Response>(_ endpoint: Endpoint<NoBody, Response>, _ parameters: PathParameters = [:],
                        query: [(String, String?)] = []) throws(CommandFailure) -> (Response, [UInt8]) {
        try call(endpoint, parameters, query: query, body: NoBody())
    }

    /// Sends a request built from the endpoint table.
    func send(_ request: APIRequest) throws(CommandFailure) -> HTTPResponse {
        try send(request.method.rawValue, request.target, body: request.body)
    }

    /// A 2xx answer decoded as `type`, with its raw JSON; else the daemon's error.
    func decode<T: Decodable>(_ response: HTTPResponse, as type: T.Type) throws(CommandFailure) -> (T, [UInt8]) {
        guard (200..<300).contains(response.status) else { throw Client.failure(response) }
        do {
            return (try APICoding.decode(type, from: response.body), response.body)
        } catch {
            throw CommandFailure(message: "unexpected answer from registryd: \(APICoding.describe(error))")
        }
    }

    static func failure(_ response: HTTPResponse) -> CommandFailure {
        if let body = try? APICoding.decode(ErrorBody.self, from: response.body) { return CommandFailure(message: body.error) }
        return CommandFailure(message: "registryd answered \(response.status) \(HTTPResponse.reason(response.status))")
    }
}
