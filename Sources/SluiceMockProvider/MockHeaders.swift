import Foundation
import HTTPTypes
import Hummingbird

/// Header names of both wire formats.
enum MockHeaders {
    static let xMock = HTTPField.Name("x-mock")!
    static let xAPIKey = HTTPField.Name("x-api-key")!
    static let anthropicVersion = HTTPField.Name("anthropic-version")!
    static let requestID = HTTPField.Name("request-id")!
    static let xRequestID = HTTPField.Name("x-request-id")!
    static let retryAfter = HTTPField.Name("retry-after")!
    static let retryAfterMs = HTTPField.Name("retry-after-ms")!
    static let shouldRetry = HTTPField.Name("x-should-retry")!

    static let openAILimitRequests = HTTPField.Name("x-ratelimit-limit-requests")!
    static let openAIRemainingRequests = HTTPField.Name("x-ratelimit-remaining-requests")!
    static let openAIResetRequests = HTTPField.Name("x-ratelimit-reset-requests")!
    static let openAILimitTokens = HTTPField.Name("x-ratelimit-limit-tokens")!
    static let openAIRemainingTokens = HTTPField.Name("x-ratelimit-remaining-tokens")!
    static let openAIResetTokens = HTTPField.Name("x-ratelimit-reset-tokens")!

    static let anthropicRequestsLimit = HTTPField.Name("anthropic-ratelimit-requests-limit")!
    static let anthropicRequestsRemaining = HTTPField.Name("anthropic-ratelimit-requests-remaining")!
    static let anthropicRequestsReset = HTTPField.Name("anthropic-ratelimit-requests-reset")!
    static let anthropicTokensLimit = HTTPField.Name("anthropic-ratelimit-tokens-limit")!
    static let anthropicTokensRemaining = HTTPField.Name("anthropic-ratelimit-tokens-remaining")!
    static let anthropicTokensReset = HTTPField.Name("anthropic-ratelimit-tokens-reset")!

    /// The rate-limit headers of `format` for a limiter decision.
    static func rateLimit(_ format: MockWireFormat, _ d: MockRateLimiter.Decision, into fields: inout HTTPFields) {
        switch format {
        case .openAI:
            let reset = MockDurationFormat.goDuration(d.reset)
            fields[openAILimitRequests] = String(d.requestLimit)
            fields[openAIRemainingRequests] = String(d.requestsRemaining)
            fields[openAIResetRequests] = reset
            fields[openAILimitTokens] = String(d.tokenLimit)
            fields[openAIRemainingTokens] = String(d.tokensRemaining)
            fields[openAIResetTokens] = reset
        case .anthropic:
            let seconds = Double(d.reset.components.seconds) + Double(d.reset.components.attoseconds) / 1e18
            // Round up so the advertised instant is never before the real reset.
            let reset = MockDurationFormat.rfc3339(Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded(.up)))
            fields[anthropicRequestsLimit] = String(d.requestLimit)
            fields[anthropicRequestsRemaining] = String(d.requestsRemaining)
            fields[anthropicRequestsReset] = reset
            fields[anthropicTokensLimit] = String(d.tokenLimit)
            fields[anthropicTokensRemaining] = String(d.tokensRemaining)
            fields[anthropicTokensReset] = reset
        }
    }

    /// `retry-after-ms: N` and `retry-after: ceil(N/1000)`.
    static func retryAfter(milliseconds: Int, into fields: inout HTTPFields) {
        fields[retryAfterMs] = String(milliseconds)
        fields[retryAfter] = String((milliseconds + 999) / 1000)
    }
}
