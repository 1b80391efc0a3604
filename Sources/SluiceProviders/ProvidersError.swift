/// An error of the providers layer that is not a provider call failure: bad configuration,
/// an unreadable price table. (Call failures are ``ProviderFailure``s.)
public struct ProvidersError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, extensible.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let value: String
        init(_ value: String) { self.value = value }
        public var description: String { value }

        /// A configuration value is missing or invalid; `field` names it.
        public static let invalidConfiguration = Code("invalid_configuration")
        /// The configuration file could not be read or parsed.
        public static let unreadableConfiguration = Code("unreadable_configuration")
        /// The price table is missing or malformed.
        public static let invalidPriceTable = Code("invalid_price_table")
    }

    public var code: Code
    /// A human-readable explanation (never contains a secret).
    public var message: String
    /// The configuration path of the offending value, like `providers[1].base_url`.
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String {
        if let field { return "\(field): \(message)" }
        return message
    }
}
