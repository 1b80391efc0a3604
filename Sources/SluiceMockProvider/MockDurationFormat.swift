public import Foundation

/// Formats used by provider rate-limit headers.
public enum MockDurationFormat {
    /// A duration as Go's `time.Duration.String()` prints it, which OpenAI uses in
    /// `x-ratelimit-reset-*`: `"0s"`, `"12ms"`, `"1.5s"`, `"6m0s"`, `"1h2m3s"`.
    public static func goDuration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let totalNanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if totalNanos <= 0 { return "0s" }
        if totalNanos < 1_000 { return "\(totalNanos)ns" }
        if totalNanos < 1_000_000 { return trim(Double(totalNanos) / 1_000, digits: 3) + "µs" }
        if totalNanos < 1_000_000_000 { return trim(Double(totalNanos) / 1_000_000, digits: 6) + "ms" }
        let hours = totalNanos / 3_600_000_000_000
        let minutes = (totalNanos / 60_000_000_000) % 60
        let secondNanos = totalNanos % 60_000_000_000
        let secondsText = trim(Double(secondNanos) / 1_000_000_000, digits: 9) + "s"
        if hours > 0 { return "\(hours)h\(minutes)m" + secondsText }
        if minutes > 0 { return "\(minutes)m" + secondsText }
        return secondsText
    }

    /// An instant as RFC 3339 UTC with whole seconds (`2025-01-01T00:00:30Z`), as in
    /// Anthropic's `anthropic-ratelimit-*-reset`.
    public static func rfc3339(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ n: Int?, _ width: Int = 2) -> String {
            let s = String(n ?? 0)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day))T\(pad(c.hour)):\(pad(c.minute)):\(pad(c.second))Z"
    }

    /// `value` with at most `digits` decimals and no trailing zeros (`1.500` → `1.5`, `2.0` → `2`).
    private static func trim(_ value: Double, digits: Int) -> String {
        var text = String(format: "%.\(digits)f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}
