import Foundation
import Sluice
import Testing
@testable import SluiceProviders

@Suite("Response headers: retry, rate limits, durations")
struct HeaderParsingTests {
    func lookup(_ headers: [String: String]) -> (String) -> String? {
        let lowered = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        return { lowered[$0.lowercased()] }
    }

    @Test(arguments: [
        ("6m0s", Duration.seconds(360)), ("1.5s", .milliseconds(1500)), ("12ms", .milliseconds(12)),
        ("1h2m3.5s", .milliseconds(3_723_500)), ("0s", .zero), ("250us", .microseconds(250)), ("2", .seconds(2)),
    ])
    func goDurations(_ text: String, _ expected: Duration) {
        #expect(GoDuration.parse(text) == expected)
    }

    @Test(arguments: ["", "abc", "5x", "-1s", "s", "1.2.3s"])
    func invalidGoDurations(_ text: String) {
        #expect(GoDuration.parse(text) == nil)
    }

    @Test func retryAfterMillisecondsWins() {
        let value = ResponseHeaderParsing.retryAfter(lookup(["retry-after-ms": "1500", "retry-after": "30"]))
        #expect(value == .milliseconds(1500))
    }

    @Test func retryAfterSeconds() {
        #expect(ResponseHeaderParsing.retryAfter(lookup(["Retry-After": "7"])) == .seconds(7))
        #expect(ResponseHeaderParsing.retryAfter(lookup(["Retry-After": "0.25"])) == .milliseconds(250))
    }

    @Test func retryAfterHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let header = formatter.string(from: now.addingTimeInterval(42))
        #expect(ResponseHeaderParsing.retryAfter(lookup(["Retry-After": header]), now: now) == .seconds(42))
        // A date in the past means "now".
        let past = formatter.string(from: now.addingTimeInterval(-10))
        #expect(ResponseHeaderParsing.retryAfter(lookup(["Retry-After": past]), now: now) == .zero)
    }

    @Test func retryAfterAbsentOrGarbage() {
        #expect(ResponseHeaderParsing.retryAfter(lookup([:])) == nil)
        #expect(ResponseHeaderParsing.retryAfter(lookup(["retry-after": "soon"])) == nil)
    }

    @Test func shouldRetry() {
        #expect(ResponseHeaderParsing.shouldRetry(lookup(["x-should-retry": "true"])) == true)
        #expect(ResponseHeaderParsing.shouldRetry(lookup(["x-should-retry": "false"])) == false)
        #expect(ResponseHeaderParsing.shouldRetry(lookup(["x-should-retry": "maybe"])) == nil)
        #expect(ResponseHeaderParsing.shouldRetry(lookup([:])) == nil)
    }

    @Test func openAIRateLimitHeaders() throws {
        let snapshot = try #require(ResponseHeaderParsing.openAIRateLimits(lookup([
            "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms", "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000", "x-ratelimit-reset-tokens": "1m2s",
        ])))
        #expect(snapshot == RateLimitSnapshot(
            requestsLimit: 500, requestsRemaining: 499, requestsReset: .milliseconds(120),
            tokensLimit: 30000, tokensRemaining: 29000, tokensReset: .seconds(62)
        ))
        #expect(ResponseHeaderParsing.openAIRateLimits(lookup([:])) == nil)
    }

    @Test func anthropicRateLimitHeaders() throws {
        let now = try #require(ResponseHeaderParsing.parseRFC3339("2026-11-20T10:00:00Z"))
        let snapshot = try #require(ResponseHeaderParsing.anthropicRateLimits(lookup([
            "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-11-20T10:00:01Z",
            "anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "39000",
            "anthropic-ratelimit-tokens-reset": "2026-11-20T10:00:30.500Z",
        ]), now: now))
        #expect(snapshot.requestsLimit == 50)
        #expect(snapshot.requestsRemaining == 49)
        #expect(snapshot.requestsReset == .seconds(1))
        #expect(snapshot.tokensLimit == 40000)
        #expect(snapshot.tokensRemaining == 39000)
        #expect(snapshot.tokensReset == .milliseconds(30500))
        // Falls back to input-tokens headers.
        let input = try #require(ResponseHeaderParsing.anthropicRateLimits(lookup([
            "anthropic-ratelimit-input-tokens-limit": "10", "anthropic-ratelimit-input-tokens-remaining": "3",
        ]), now: now))
        #expect(input.tokensLimit == 10 && input.tokensRemaining == 3)
        #expect(ResponseHeaderParsing.anthropicRateLimits(lookup([:]), now: now) == nil)
    }
}
