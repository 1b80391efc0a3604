/// Per-request time limits. `nil` disables a limit.
///
/// All four are enforced by the client's event loop (checked to within a few milliseconds) and
/// each fails the request with its own ``HTTPError/Code``, so callers can tell a dead provider
/// (connect), an overloaded one (first byte) and a stalled stream (idle) apart.
public struct HTTPTimeouts: Sendable, Equatable {
    /// Time to establish the TCP connection and TLS handshake. Default 10 s.
    /// Fails with ``HTTPError/Code/connectTimeout``. A reused connection does not count.
    public var connect: Duration?
    /// Time from the start of the request until the **first byte of the response body** (or the
    /// end of a response that has no body). Because headers precede the body, this also bounds the
    /// wait for response headers; it covers the "model is thinking" gap of a streaming LLM call.
    /// Default 60 s. Fails with ``HTTPError/Code/firstByteTimeout``.
    public var firstByte: Duration?
    /// Maximum gap between two received body chunks once the body has started. Time during which
    /// the transfer is paused because the consumer is slow (back-pressure) does not count.
    /// Default 60 s. Fails with ``HTTPError/Code/idleTimeout`` (thrown from the body iterator).
    public var idle: Duration?
    /// Limit on the whole transfer, from the start of the request to the last body byte, including
    /// time spent paused by back-pressure. Default `nil` (no limit). Fails with ``HTTPError/Code/totalTimeout``.
    public var total: Duration?

    /// - Parameters: see the properties; defaults are 10 s connect, 60 s first byte, 60 s idle, no total limit.
    public init(
        connect: Duration? = .seconds(10),
        firstByte: Duration? = .seconds(60),
        idle: Duration? = .seconds(60),
        total: Duration? = nil
    ) {
        self.connect = connect
        self.firstByte = firstByte
        self.idle = idle
        self.total = total
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at 0 for negative durations.
    var nanoseconds: UInt64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        return UInt64(s) &* 1_000_000_000 &+ UInt64(atto / 1_000_000_000)
    }

    /// Whole milliseconds (rounded up, at least 1 for positive durations), for curl options.
    var milliseconds: Int {
        let ns = nanoseconds
        return Int((ns + 999_999) / 1_000_000)
    }
}
