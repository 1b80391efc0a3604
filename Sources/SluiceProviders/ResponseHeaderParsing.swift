public import Foundation
public import Sluice

/// Reads the retry and rate-limit headers of provider responses. The functions take a header
/// lookup (case-insensitive name → first value) so they work on any header container.
public enum ResponseHeaderParsing {
    /// The provider's retry delay: `retry-after-ms` (milliseconds) first, then `Retry-After`
    /// as seconds or as an HTTP date (relative to `now`). Nil when absent or unparsable;
    /// a date in the past gives zero.
    public static func retryAfter(_ header: (String) -> String?, now: Date = Date()) -> Duration? {
        if let text = header("retry-after-ms")?.trimmingWhitespace(), let millis = Double(text),
           millis.isFinite, millis >= 0 {
            return .nanoseconds(Int64((millis * 1e6).rounded()))
        }
        guard let text = header("retry-after")?.trimmingWhitespace(), !text.isEmpty else { return nil }
        if let seconds = Double(text), seconds.isFinite {
            return seconds <= 0 ? .zero : .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        if let date = parseHTTPDate(text) {
            let seconds = date.timeIntervalSince(now)
            return seconds <= 0 ? .zero : .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        return nil
    }

    /// The `x-should-retry` verdict (`true`/`false`), nil when absent or anything else.
    public static func shouldRetry(_ header: (String) -> String?) -> Bool? {
        switch header("x-should-retry")?.trimmingWhitespace().lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }

    /// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets are Go
    /// durations). Nil when the response carries none of them.
    public static func openAIRateLimits(_ header: (String) -> String?) -> RateLimitSnapshot? {
        var builder = RateLimitSnapshotBuilder()
        builder.requestsLimit = header("x-ratelimit-limit-requests").flatMap(parseInt)
        builder.requestsRemaining = header("x-ratelimit-remaining-requests").flatMap(parseInt)
        builder.requestsReset = header("x-ratelimit-reset-requests").flatMap(GoDuration.parse)
        builder.tokensLimit = header("x-ratelimit-limit-tokens").flatMap(parseInt)
        builder.tokensRemaining = header("x-ratelimit-remaining-tokens").flatMap(parseInt)
        builder.tokensReset = header("x-ratelimit-reset-tokens").flatMap(GoDuration.parse)
        return builder.result
    }

    /// Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` (resets are
    /// RFC 3339 timestamps, turned into a duration from `now`). When the combined `tokens-*`
    /// headers are absent, the `input-tokens-*` ones are used. Nil when none is present.
    public static func anthropicRateLimits(_ header: (String) -> String?, now: Date = Date()) -> RateLimitSnapshot? {
        var builder = RateLimitSnapshotBuilder()
        func reset(_ name: String) -> Duration? {
            guard let text = header(name), let date = parseRFC3339(text) else { return nil }
            let seconds = date.timeIntervalSince(now)
            return seconds <= 0 ? .zero : .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        builder.requestsLimit = header("anthropic-ratelimit-requests-limit").flatMap(parseInt)
        builder.requestsRemaining = header("anthropic-ratelimit-requests-remaining").flatMap(parseInt)
        builder.requestsReset = reset("anthropic-ratelimit-requests-reset")
        let tokens = header("anthropic-ratelimit-tokens-limit") != nil ? "tokens" : "input-tokens"
        builder.tokensLimit = header("anthropic-ratelimit-\(tokens)-limit").flatMap(parseInt)
        builder.tokensRemaining = header("anthropic-ratelimit-\(tokens)-remaining").flatMap(parseInt)
        builder.tokensReset = reset("anthropic-ratelimit-\(tokens)-reset")
        return builder.result
    }

    static func parseInt(_ text: String) -> Int? {
        Int(text.trimmingWhitespace())
    }

    /// Parses an RFC 3339 timestamp with or without fractional seconds.
    public static func parseRFC3339(_ text: String) -> Date? {
        let trimmed = text.trimmingWhitespace()
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: trimmed) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: trimmed)
    }

    /// Parses an HTTP date (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, also RFC 850 and
    /// asctime forms).
    public static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}

/// Collects rate-limit header values; ``result`` is nil when nothing was found.
struct RateLimitSnapshotBuilder {
    var requestsLimit: Int?
    var requestsRemaining: Int?
    var requestsReset: Duration?
    var tokensLimit: Int?
    var tokensRemaining: Int?
    var tokensReset: Duration?

    var result: RateLimitSnapshot? {
        if requestsLimit == nil && requestsRemaining == nil && requestsReset == nil
            && tokensLimit == nil && tokensRemaining == nil && tokensReset == nil {
            return nil
        }
        return RateLimitSnapshot(
            requestsLimit: requestsLimit, requestsRemaining: requestsRemaining, requestsReset: requestsReset,
            tokensLimit: tokensLimit, tokensRemaining: tokensRemaining, tokensReset: tokensReset
        )
    }
}
