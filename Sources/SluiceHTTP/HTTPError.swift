import SluiceSupport

/// A failure of an HTTP transfer. HTTP error statuses are not errors (see ``HTTPResponse/status``).
/// The fields are read-only outside this module.
///
/// ``description`` contains the code, the message and the method and URL without query string or
/// userinfo; ``debugDescription`` lists every field. Neither ever contains request headers or
/// bodies, which carry API keys, nor response bodies.
public struct HTTPError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible, Equatable {
    /// The kind of failure; extensible (compare with the static members).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The request could not be sent as given (bad URL, unsupported scheme, bad option).
        public static let invalidRequest = Code("invalidRequest")
        /// The connection could not be established (DNS failure, connection refused, unreachable).
        public static let connectFailed = Code("connectFailed")
        /// ``HTTPTimeouts/connect`` elapsed.
        public static let connectTimeout = Code("connectTimeout")
        /// ``HTTPTimeouts/firstByte`` elapsed.
        public static let firstByteTimeout = Code("firstByteTimeout")
        /// ``HTTPTimeouts/idle`` elapsed between two body chunks.
        public static let idleTimeout = Code("idleTimeout")
        /// ``HTTPTimeouts/total`` elapsed.
        public static let totalTimeout = Code("totalTimeout")
        /// TLS handshake or certificate verification failed.
        public static let tls = Code("tls")
        /// The connection failed mid-transfer: reset, closed early (including a body shorter than
        /// its `Content-Length` or a chunked body without its last chunk), HTTP/2 stream errors.
        public static let transport = Code("transport")
        /// ``HTTPBody/collect(upTo:)`` saw more bytes than its limit.
        public static let bodyTooLarge = Code("bodyTooLarge")
        /// The awaiting task was cancelled or the body was dropped; the transfer was aborted.
        public static let cancelled = Code("cancelled")
        /// The client was shut down.
        public static let shutdown = Code("shutdown")

        public var description: String { name }
    }

    /// The kind of failure.
    public internal(set) var code: Code
    /// A human-readable explanation (never contains request headers).
    public internal(set) var message: String
    /// The request method, if the error belongs to a request.
    public internal(set) var method: String?
    /// The request URL without userinfo, query and fragment.
    public internal(set) var url: String?
    /// libcurl's result code, when the failure came from libcurl.
    public internal(set) var curlCode: Int?

    init(code: Code, message: String, method: String? = nil, url: String? = nil, curlCode: Int? = nil) {
        self.code = code
        self.message = message
        self.method = method
        self.url = url
        self.curlCode = curlCode
    }

    public var description: String {
        var s = ErrorFormat.summary("HTTPError", code: code, message)
        if let method, let url { s += " (\(method) \(url))" }
        if let curlCode { s += " [curl \(curlCode)]" }
        return s
    }

    /// Every field (the URL is the redacted one `description` shows too).
    public var debugDescription: String {
        ErrorFormat.debug("HTTPError", code: code, [
            ("message", message), ("method", method), ("url", url), ("curlCode", curlCode),
        ])
    }
}
