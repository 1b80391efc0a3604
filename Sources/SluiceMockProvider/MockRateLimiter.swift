import SluiceSupport

/// Fixed-window request and token limits per (API key, model).
///
/// A key's window opens with its first request and lasts ``MockProviderConfiguration/rateLimitWindow``;
/// within it at most `rpm` requests and `tpm` tokens are admitted (a request costs its input
/// tokens plus its requested max tokens). A rejected request consumes nothing. Fixed windows
/// make "429 now, success once the window has passed" exact for tests.
final class MockRateLimiter: Sendable {
    /// The outcome of one admission check, with everything the rate-limit headers need.
    struct Decision: Sendable {
        var allowed: Bool
        /// Whether the token limit (rather than the request limit) rejected the request.
        var tokensExceeded: Bool
        var requestLimit: Int
        var requestsRemaining: Int
        var tokenLimit: Int
        var tokensRemaining: Int
        /// Time until the window (and so both limits) resets.
        var reset: Duration
    }

    /// The limit advertised in headers when a dimension is unlimited.
    static let unlimited = 1_000_000_000

    private struct Key: Hashable {
        var apiKey: String
        var model: String
    }

    private struct Window {
        var start: ContinuousClock.Instant
        var requests: Int
        var tokens: Int
    }

    private let rpm: Int?
    private let tpm: Int?
    private let window: Duration
    private let windows = Locked<[Key: Window]>([:])

    init(rpm: Int?, tpm: Int?, window: Duration) {
        self.rpm = rpm
        self.tpm = tpm
        self.window = window
    }

    /// Admits (and counts) or rejects a request of `cost` tokens.
    func admit(apiKey: String, model: String, cost: Int, now: ContinuousClock.Instant = .now) -> Decision {
        let requestLimit = rpm ?? Self.unlimited
        let tokenLimit = tpm ?? Self.unlimited
        let key = Key(apiKey: apiKey, model: model)
        return windows.withLock { windows in
            var current = windows[key] ?? Window(start: now, requests: 0, tokens: 0)
            if now - current.start >= window {
                current = Window(start: now, requests: 0, tokens: 0)
            }
            let requestsOK = rpm.map { current.requests + 1 <= $0 } ?? true
            let tokensOK = tpm.map { current.tokens + cost <= $0 } ?? true
            let allowed = requestsOK && tokensOK
            if allowed {
                current.requests += 1
                current.tokens += cost
            }
            windows[key] = current
            return Decision(
                allowed: allowed, tokensExceeded: requestsOK && !tokensOK,
                requestLimit: requestLimit, requestsRemaining: max(0, requestLimit - current.requests),
                tokenLimit: tokenLimit, tokensRemaining: max(0, tokenLimit - current.tokens),
                reset: max(.zero, current.start + window - now)
            )
        }
    }

    /// Forgets every window.
    func reset() {
        windows.withLock { $0.removeAll() }
    }
}
