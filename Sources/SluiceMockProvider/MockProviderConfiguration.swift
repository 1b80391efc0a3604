public import SluiceSupport

/// How a mock provider server behaves when a request carries no directive.
///
/// Every field has a default that gives an instant, unlimited, never-failing server on
/// `127.0.0.1:8089`. The `sluice-mock-provider` executable exposes each field as a flag.
public struct MockProviderConfiguration: Sendable {
    /// The address to bind. Default `127.0.0.1` (the mock is for loopback use only).
    public var host: String
    /// The TCP port to bind; `0` picks a free port (read it back from
    /// ``RunningMockProvider/port`` or the `listening on` line). Default `8089`.
    public var port: Int
    /// Requests allowed per (API key, model) per ``rateLimitWindow``; `nil` = unlimited. Default `nil`.
    public var rpm: Int?
    /// Tokens allowed per (API key, model) per ``rateLimitWindow``; a request costs its input
    /// tokens plus its requested `max_tokens`. `nil` = unlimited. Default `nil`.
    public var tpm: Int?
    /// The length of a fixed rate-limit window. Default 60 s (so ``rpm``/``tpm`` are per minute);
    /// tests shorten it to see the window reset quickly.
    public var rateLimitWindow: Duration
    /// Delay before the first content token when the request has no `ttft_ms` directive. Default zero.
    public var ttft: Duration
    /// Streaming pace after the first token when the request has no `tps` directive; `nil` = as
    /// fast as the connection takes them. Default `nil`.
    public var tokensPerSecond: Double?
    /// Output length when the request has no `tokens` directive (still capped by `max_tokens`). Default 16.
    public var outputTokens: Int
    /// Probability in `0...1` that a request fails with ``faultStatus`` regardless of directives. Default 0.
    public var faultRate: Double
    /// The HTTP status of randomly injected faults. Default 503.
    public var faultStatus: Int
    /// Accepted API keys; empty = any non-empty key is accepted. A key not in the set gets 401. Default empty.
    public var apiKeys: Set<Redacted>
    /// TCP listen backlog; large so a burst of thousands of connections is not refused. Default 4096.
    public var backlog: Int
    /// Largest accepted request body in bytes; larger bodies get 413. Default 8 MiB.
    public var maxRequestBodyBytes: Int

    /// Creates a configuration; every parameter defaults to the value documented on its property.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8089,
        rpm: Int? = nil,
        tpm: Int? = nil,
        rateLimitWindow: Duration = .seconds(60),
        ttft: Duration = .zero,
        tokensPerSecond: Double? = nil,
        outputTokens: Int = 16,
        faultRate: Double = 0,
        faultStatus: Int = 503,
        apiKeys: Set<Redacted> = [],
        backlog: Int = 4096,
        maxRequestBodyBytes: Int = 8 << 20
    ) {
        self.host = host
        self.port = port
        self.rpm = rpm
        self.tpm = tpm
        self.rateLimitWindow = rateLimitWindow
        self.ttft = ttft
        self.tokensPerSecond = tokensPerSecond
        self.outputTokens = outputTokens
        self.faultRate = faultRate
        self.faultStatus = faultStatus
        self.apiKeys = apiKeys
        self.backlog = backlog
        self.maxRequestBodyBytes = maxRequestBodyBytes
    }
}
