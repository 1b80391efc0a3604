/// Errors of the worker runtime itself (provider failures are ``Sluice/ProviderFailure``).
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public static let invalidConfiguration = Code("invalidConfiguration")
        public static let database = Code("database")
        public static let childFailed = Code("childFailed")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
