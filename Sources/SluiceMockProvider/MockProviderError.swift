import SluiceSupport

/// An error of the mock provider (bad directive, bad request, failure to bind). The fields are
/// read-only outside this module; messages never contain an API key.
public struct MockProviderError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// The kind of failure; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A `x-mock` header or `[[mock: …]]` directive could not be parsed.
        public static let invalidDirective = Code("invalid_directive")
        /// The request body is not what the wire format requires.
        public static let invalidRequest = Code("invalid_request")
        /// The server could not start (bind failed, …).
        public static let startFailed = Code("start_failed")
    }

    /// What went wrong.
    public let code: Code
    /// A human-readable explanation (never contains an API key).
    public let message: String
    /// The error that caused this one (e.g. the bind failure behind `.startFailed`).
    public let underlying: (any Error)?

    init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// `MockProviderError.<code>: <message>`.
    public var description: String { ErrorFormat.summary("MockProviderError", code: code, message) }

    public var debugDescription: String {
        ErrorFormat.debug("MockProviderError", code: code, [("message", message), ("underlying", underlying)])
    }
}
