import Foundation

/// Provider-looking identifiers (`chatcmpl-…`, `msg_…`, `req_…`).
enum MockIDs {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    /// `prefix` followed by 24 random alphanumerics.
    static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in 0..<bytes.count {
            bytes[i] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
        }
        return prefix + String(decoding: bytes, as: UTF8.self)
    }

    /// Seconds since 1970.
    static func unixTime() -> Int { Int(Date().timeIntervalSince1970) }
}
