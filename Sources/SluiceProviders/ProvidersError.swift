import SluiceSupport

/// An error of the providers layer that is not a provider call failure: bad configuration,
/// an unreadable price table. (Call failures are ``ProviderFailure``s.) The fields are
/// read-only outside this module.
///
/// Neither `description` nor `debugDescription` contains a secret: messages name the
/// configuration path of a bad value, never an API key.
public struct ProvidersError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, extensible.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let value: String
        private init(_ value: String) { self.value = value }
        public var description: String { value }

        /// A configuration value is missing or invalid; `field` names it.
        public static let invalidConfiguration = Code("invalid_configuration")
        /// The configuration file could not be read or parsed.
        public static let unreadableConfiguration = Code("unreadable_configuration")
        /// The price table is missing or malformed.
        public static let invalidPriceTable = Code("invalid_price_table")
    }

    public internal(set) var code: Code
    /// A human-readable explanation (never contains a secret).
    public internal(set) var message: String
    /// The configuration path of the offending value, like `providers[1].base_url`.
    public internal(set) var field: String?

    init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// `ProvidersError.<code>: [<field>: ]<message>`.
    public var description: String {
        ErrorFormat.summary("ProvidersError", code: code, field.map { "\($0): \(message)" } ?? message)
    }

    public var debugDescription: String {
        ErrorFormat.debug("ProvidersError", code: code, [("message", message), ("field", field)])
    }
}
