import Foundation
import SluiceSupport

/// Removes secrets from text that came from a provider (error messages), so failures stored
/// in the database and shown to operators never contain an API key — even when a provider
/// (or a misbehaving proxy) echoes the key back.
public struct SecretRedactor: Sendable {
    /// The longest message kept, in characters; longer messages are truncated with `…`.
    public static let maxMessageLength = 500

    private let secrets: [String]

    /// - Parameter secrets: the exact values to remove (the provider's API keys).
    public init(secrets: [String]) {
        // Longest first so a key that contains another is removed whole.
        self.secrets = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    /// `text` with every known secret and every key-shaped token (`sk-…`, `sk-ant-…`, bearer
    /// tokens) replaced by `<redacted>`, truncated to ``maxMessageLength`` characters.
    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingAll(secret, with: "<redacted>")
        }
        result = Self.redactKeyShapedTokens(result)
        if result.count > Self.maxMessageLength {
            result = String(result.prefix(Self.maxMessageLength)) + "…"
        }
        return result
    }

    /// Replaces tokens that look like API keys: `sk-` followed by 8+ key characters, and the
    /// value after `Bearer ` (``Redacted/scrubbingKeyShapedTokens(_:)``).
    static func redactKeyShapedTokens(_ text: String) -> String {
        Redacted.scrubbingKeyShapedTokens(text)
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
