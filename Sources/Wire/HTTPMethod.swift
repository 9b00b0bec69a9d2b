/// The HTTP methods the control API's endpoints take, in the order an `Allow` header lists them.
///
/// Requests carry their method as the text sent (``HTTPRequest/method``), so a method outside
/// this set (`PATCH`, `HEAD`) simply matches no endpoint.
public enum HTTPMethod: String, Sendable, CaseIterable, Comparable {
    case get = "GET"
    case post = "POST"
    case put = "PUT"
    case delete = "DELETE"

    /// `Allow` lists reads before writes, whatever order the endpoints were declared in.
    public static func < (a: HTTPMethod, b: HTTPMethod) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
