import SluiceSupport

/// Errors of webhook delivery that are decided before anything is sent: a refused address
/// (SSRF guard), a URL that cannot be used, a secret that is not a Standard Webhooks secret, a
/// bad configuration. The fields are read-only outside this module. Messages never contain a
/// secret, and name URLs without userinfo or query.
public struct WebhookError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A configuration value is out of range (`field` names it).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The URL is not an absolute http(s) URL with a host.
        public static let invalidURL = Code("invalidURL")
        /// The host did not resolve.
        public static let resolutionFailed = Code("resolutionFailed")
        /// The address is in a refused class (`rule` names it) and not allow-listed, or plain
        /// http was asked of an address that is not allow-listed.
        public static let refusedAddress = Code("refusedAddress")
        /// A signing secret is not `whsec_` + base64 of 24–64 bytes.
        public static let invalidSecret = Code("invalidSecret")
        public var description: String { name }
    }

    public internal(set) var code: Code
    public internal(set) var message: String
    /// The field or rule at fault: for `.refusedAddress` the address class (`loopback`,
    /// `private`, `link_local`, `multicast`, `unspecified`, `shared`, `metadata`, `reserved`,
    /// `https_required`); for `.invalidConfiguration` the field.
    public internal(set) var rule: String?

    init(_ code: Code, _ message: String, rule: String? = nil) {
        self.code = code
        self.message = message
        self.rule = rule
    }

    /// `WebhookError.<code>: <message>`.
    public var description: String { ErrorFormat.summary("WebhookError", code: code, message) }
}
