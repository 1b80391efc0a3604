import Foundation
/// An HTTP request for ``HTTPClient/execute(_:)``.
public struct HTTPRequest: Sendable {
    /// The method, e.g. `"GET"`, `"POST"`; sent as given (upper case expected).
    public var method: String
    /// The absolute `http://` or `https://` URL.
    public var url: String
    /// Request header fields. They often carry API keys, so they never appear in errors or logs.
    public var headers: HTTPHeaders
    /// The request body, sent with a `Content-Length`; `nil` sends none.
    public var body: [UInt8]?
    /// Time limits for this request.
    public var timeouts: HTTPTimeouts

    public init(
        method: String = "GET",
        url: String,
        headers: HTTPHeaders = [:],
        body: [UInt8]? = nil,
        timeouts: HTTPTimeouts = .init()
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
    }

    /// The URL without userinfo, query and fragment (which may carry secrets), for messages and logs.
    var redactedURL: String { Self.redact(url) }

    static func redact(_ url: String) -> String {
        var s = Substring(url)
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
        if let schemeEnd = s.range(of: "://") {
            let authorityStart = schemeEnd.upperBound
            let authorityEnd = s[authorityStart...].firstIndex(of: "/") ?? s.endIndex
            if let at = s[authorityStart..<authorityEnd].lastIndex(of: "@") {
                return String(s[..<authorityStart]) + String(s[s.index(after: at)...])
            }
        }
        return String(s)
    }
}
