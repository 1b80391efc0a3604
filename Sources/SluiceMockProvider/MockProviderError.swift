/// An error of the mock provider (bad directive, bad request, failure to bind).
public struct MockProviderError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
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

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "MockProviderError(\(code)): \(message)" }
}
