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
    /// Connect to this IP address instead of resolving the URL's host (libcurl `CURLOPT_RESOLVE`).
    /// The host name is still sent (`Host`, TLS SNI and certificate check), so a caller that
    /// vetted an address connects to exactly that address. Default `nil`: the host is resolved.
    public var pinnedAddress: PinnedAddress?

    /// An address for one host and port of a request (see ``HTTPRequest/pinnedAddress``).
    public struct PinnedAddress: Sendable, Hashable {
        /// The URL's host name, as written in the URL (a name: an IP-literal URL needs no pin).
        public var host: String
        /// The URL's port (80 or 443 when the URL names none).
        public var port: Int
        /// A numeric IPv4 or IPv6 address (IPv6 without brackets).
        public var address: String

        public init(host: String, port: Int, address: String) {
            self.host = host
            self.port = port
            self.address = address
        }

        /// The `CURLOPT_RESOLVE` entry `host:port:address` (IPv6 addresses in brackets).
        var curlEntry: String {
            "\(host):\(port):" + (address.contains(":") ? "[\(address)]" : address)
        }
    }

    public init(
        method: String = "GET",
        url: String,
        headers: HTTPHeaders = [:],
        body: [UInt8]? = nil,
        timeouts: HTTPTimeouts = .init(),
        pinnedAddress: PinnedAddress? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
        self.pinnedAddress = pinnedAddress
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
