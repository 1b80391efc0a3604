import SluiceSupport

/// Errors of the worker runtime itself (provider failures are ``Sluice/ProviderFailure``). The
/// fields are read-only outside this module.
///
/// `description` is the code and the message; `debugDescription` adds the error behind a
/// `.database` error with its own debug description (server detail, failing statement).
public struct WorkerError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public static let invalidConfiguration = Code("invalidConfiguration")
        public static let database = Code("database")
        public static let childFailed = Code("childFailed")
        /// The rate limiter's Redis failed or answered something unexpected.
        public static let limiter = Code("limiter")
        public var description: String { name }
    }

    public internal(set) var code: Code
    public internal(set) var message: String
    /// The error that caused this one, when there is one (e.g. the database error behind
    /// `.database`).
    public internal(set) var underlying: (any Error)?

    init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// `WorkerError.<code>: <message>`.
    public var description: String { ErrorFormat.summary("WorkerError", code: code, message) }

    public var debugDescription: String {
        ErrorFormat.debug("WorkerError", code: code, [("message", message), ("underlying", underlying)])
    }
}
