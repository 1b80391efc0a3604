/// Parsing of Go-style duration strings (`6m0s`, `1.5s`, `12ms`, `1h2m3.5s`), the format of
/// OpenAI's `x-ratelimit-reset-*` headers.
public enum GoDuration {
    /// Parses `text`; nil when it is not a valid Go duration. A bare number is read as seconds
    /// (some OpenAI-compatible servers send `x-ratelimit-reset-requests: 1`).
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        if trimmed.isEmpty { return nil }
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        var bytes = Substring(trimmed).utf8[...]
        if bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: "-") { return nil }  // a reset in the past is meaningless
        var totalNanos = 0.0
        var sawComponent = false
        while !bytes.isEmpty {
            // number: digits with an optional fraction
            let numberEnd = bytes.firstIndex { !(($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E) } ?? bytes.endIndex
            guard numberEnd != bytes.startIndex,
                  let value = Double(String(decoding: bytes[bytes.startIndex..<numberEnd], as: UTF8.self))
            else { return nil }
            bytes = bytes[numberEnd...]
            let unitEnd = bytes.firstIndex { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E } ?? bytes.endIndex
            let unit = String(decoding: bytes[bytes.startIndex..<unitEnd], as: UTF8.self)
            bytes = bytes[unitEnd...]
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNanos += value * scale
            sawComponent = true
        }
        guard sawComponent, totalNanos.isFinite, totalNanos < 9e18 else { return nil }
        return .nanoseconds(Int64(totalNanos.rounded()))
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
