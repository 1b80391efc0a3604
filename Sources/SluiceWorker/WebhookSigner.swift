import Crypto
import Foundation
public import SluiceSupport

/// Standard Webhooks signing: `webhook-signature` is `v1,<base64 of HMAC-SHA256(key,
/// "{webhook-id}.{webhook-timestamp}.{body}")>`, one per valid secret, space-separated (during
/// a rotation both the new and the old secret sign). A secret is `whsec_` + base64 of its key
/// bytes (24–64 bytes); the key is the decoded bytes, not the text.
public enum WebhookSigner {
    /// The prefix of every secret.
    public static let secretPrefix = "whsec_"

    /// A new random secret: `whsec_` + base64 of `byteCount` bytes (24–64; default 32).
    public static func generateSecret(byteCount: Int = 32) throws(WebhookError) -> Redacted {
        guard (24...64).contains(byteCount) else {
            throw WebhookError(.invalidConfiguration, "a secret has 24 to 64 bytes (got \(byteCount))", rule: "secret_bytes")
        }
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8))
        return Redacted(secretPrefix + key.withUnsafeBytes { Data($0).base64EncodedString() })
    }

    /// The key bytes of a `whsec_` secret.
    static func key(_ secret: Redacted) throws(WebhookError) -> SymmetricKey {
        let text = secret.revealed
        guard text.hasPrefix(secretPrefix), let bytes = Data(base64Encoded: String(text.dropFirst(secretPrefix.count))),
              (24...64).contains(bytes.count) else {
            throw WebhookError(.invalidSecret, "a webhook secret must be whsec_ followed by base64 of 24 to 64 bytes")
        }
        return SymmetricKey(data: bytes)
    }

    /// One `v1,<base64>` signature of `body` for `id` and `timestamp` (Unix seconds).
    public static func signature(secret: Redacted, id: String, timestamp: Int, body: [UInt8]) throws(WebhookError) -> String {
        let key = try key(secret)
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }

    /// The `webhook-signature` header value: one signature per secret, space-separated.
    public static func signatureHeader(secrets: [Redacted], id: String, timestamp: Int, body: [UInt8]) throws(WebhookError) -> String {
        var signatures: [String] = []
        for secret in secrets { signatures.append(try signature(secret: secret, id: id, timestamp: timestamp, body: body)) }
        return signatures.joined(separator: " ")
    }
}
