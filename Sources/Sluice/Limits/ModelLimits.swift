/// Rate limits of one provider/model (the provider's tier) and its kill switch, as operators
/// set them (`sluice limits set`, `sluice models pause`) in `sluice.model_limits` or in the
/// configuration file's `limits:` section. Nil means "no limit of that kind".
public struct ModelLimits: Sendable, Hashable, Codable {
    public var provider: String
    public var model: String
    /// Requests per minute.
    public var rpm: Int?
    /// Tokens per minute, all tokens of a call (input + output + cache).
    public var tpm: Int?
    /// Input tokens per minute, for providers that limit input separately (Anthropic ITPM).
    public var inputTPM: Int?
    /// Output tokens per minute (Anthropic OTPM).
    public var outputTPM: Int?
    /// Kill switch: no new starts while true; calls in flight finish.
    public var paused: Bool
    /// The API key these limits are for (a key pool: its name in the provider's configuration,
    /// never the secret); nil for the model's own limits, which every key shares.
    public var keyID: String?

    public init(provider: String, model: String, rpm: Int? = nil, tpm: Int? = nil, inputTPM: Int? = nil,
                outputTPM: Int? = nil, paused: Bool = false, keyID: String? = nil) {
        self.keyID = keyID
        self.provider = provider
        self.model = model
        self.rpm = rpm
        self.tpm = tpm
        self.inputTPM = inputTPM
        self.outputTPM = outputTPM
        self.paused = paused
    }

    /// Whether any rate limit is set (a paused model without limits has none).
    public var hasRateLimit: Bool { rpm != nil || tpm != nil || inputTPM != nil || outputTPM != nil }

    /// Checks the values; the error names the field and the rule.
    public func validate() throws(SluiceError) {
        for (field, value) in [("rpm", rpm), ("tpm", tpm), ("input_tpm", inputTPM), ("output_tpm", outputTPM)] {
            if let value, value <= 0 {
                throw SluiceError.invalid(field, "positive", "must be a positive integer (got \(value))")
            }
        }
        if provider.isEmpty { throw SluiceError.invalid("provider", "required", "must not be empty") }
        if model.isEmpty { throw SluiceError.invalid("model", "required", "must not be empty") }
        if let keyID, !Self.isKeyID(keyID) {
            throw SluiceError.invalid("key_id", "format", "key ids must match ^[a-z0-9][a-z0-9_.-]{0,62}$ (got \"\(keyID.prefix(80))\")")
        }
    }

    /// Whether `text` is a valid API-key id (`^[a-z0-9][a-z0-9_.-]{0,62}$`).
    public static func isKeyID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        return alnum(first) && bytes.allSatisfy { alnum($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}
