import SluiceSupport

/// The counters served at `GET /admin/stats` (JSON keys in snake_case).
public struct MockProviderStats: Sendable, Codable, Equatable {
    /// Completion requests received (both wire formats, any outcome).
    public var requestsTotal = 0
    /// Completion responses by HTTP status (`"200"`, `"429"`, …).
    public var requestsByStatus: [String: Int] = [:]
    /// Output tokens actually sent (streams cut short count what was sent).
    public var tokensServed = 0
    /// Input tokens of admitted requests (the usage rule).
    public var inputTokens = 0
    /// Requests rejected by the mock's own RPM/TPM limits.
    public var rateLimited = 0
    /// Streaming responses in progress now.
    public var activeStreams = 0
    /// Highest ``activeStreams`` seen since start or the last reset.
    public var peakConcurrentStreams = 0

    /// Zero counters.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case requestsTotal = "requests_total"
        case requestsByStatus = "requests_by_status"
        case tokensServed = "tokens_served"
        case inputTokens = "input_tokens"
        case rateLimited = "rate_limited"
        case activeStreams = "active_streams"
        case peakConcurrentStreams = "peak_concurrent_streams"
    }
}

/// The mutable server state shared by all connections: counters, rate-limit windows and the
/// per-prompt `fail_times` counters. Each piece sits behind its own short lock.
final class MockProviderState: Sendable {
    let configuration: MockProviderConfiguration
    let rateLimiter: MockRateLimiter
    private let stats = Locked(MockProviderStats())
    private let failCounters = Locked<[String: Int]>([:])

    init(configuration: MockProviderConfiguration) {
        self.configuration = configuration
        self.rateLimiter = MockRateLimiter(rpm: configuration.rpm, tpm: configuration.tpm, window: configuration.rateLimitWindow)
    }

    var snapshot: MockProviderStats { stats.current }

    func reset() {
        stats.withLock { stats in
            let active = stats.activeStreams
            stats = MockProviderStats()
            stats.activeStreams = active
            stats.peakConcurrentStreams = active
        }
        failCounters.withLock { $0.removeAll() }
        rateLimiter.reset()
    }

    func recordRequest() { stats.withLock { $0.requestsTotal += 1 } }
    func recordStatus(_ status: Int) { stats.withLock { $0.requestsByStatus[String(status), default: 0] += 1 } }
    func recordRateLimited() { stats.withLock { $0.rateLimited += 1 } }
    func recordInput(_ tokens: Int) { stats.withLock { $0.inputTokens += tokens } }
    func recordOutput(_ tokens: Int) { stats.withLock { $0.tokensServed += tokens } }

    func streamStarted() {
        stats.withLock {
            $0.activeStreams += 1
            $0.peakConcurrentStreams = max($0.peakConcurrentStreams, $0.activeStreams)
        }
    }

    func streamEnded() { stats.withLock { $0.activeStreams -= 1 } }

    /// Counts one more request for `key` and returns the new count (1 for the first).
    func nextAttempt(for key: String) -> Int {
        failCounters.withLock { counters in
            counters[key, default: 0] += 1
            return counters[key]!
        }
    }
}
