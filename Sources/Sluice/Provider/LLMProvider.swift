public import Foundation
import SluiceSupport

/// A client for one provider kind (OpenAI-compatible, Anthropic, the built-in echo provider).
///
/// The worker calls ``call(_:)`` once per attempt and never retries inside it: the worker's
/// retry loop is the only retry layer in Sluice. Implementations throw ``ProviderFailure`` for
/// every failure (other errors are treated as `internal`), and honour task cancellation by
/// aborting the underlying call promptly.
public protocol LLMProvider: Sendable {
    /// The provider name jobs use (`openai`, `anthropic`, `echo`, or a configured name).
    var name: String { get }

    /// Performs one attempt of a job's call.
    func call(_ call: ProviderCall) async throws -> ProviderResult

    /// The context window of `model` in tokens (input plus output), nil when unknown. Routes
    /// move a job that failed with `context_length` only to a target with a larger known window.
    func contextWindow(model: String) -> Int?
}

extension LLMProvider {
    /// Unknown by default.
    public func contextWindow(model: String) -> Int? { nil }
}

/// Everything a provider needs for one attempt.
public struct ProviderCall: Sendable {
    public var jobID: UUID
    public var tenant: String
    public var provider: String
    public var model: String
    /// The provider-shaped request body (JSON object) as submitted. The provider client sets
    /// `model`, `stream` and its own fields; it never reads credentials from here.
    public var request: [UInt8]
    public var maxOutputTokens: Int?
    /// Stream (SSE) unless the job asked otherwise; streaming measures time to first token.
    public var stream: Bool
    /// The job's metadata object (JSON), for providers that read options from it (echo).
    public var metadata: [UInt8]
    /// W3C trace context to forward.
    public var traceparent: String?
    /// The attempt number, starting at 1.
    public var attempt: Int
    /// The route the job runs through, nil for a job that names its provider. A route job's
    /// request may be in either wire format (OpenAI Chat Completions or Anthropic Messages);
    /// the provider translates it to its own.
    public var route: String?
    /// The API key to call with, by its configured id (a key pool: admission chose it); nil lets
    /// the provider pick (round-robin over its keys).
    public var keyID: String?

    public init(
        jobID: UUID, tenant: String, provider: String, model: String, request: [UInt8],
        maxOutputTokens: Int? = nil, stream: Bool = true, metadata: [UInt8] = Array("{}".utf8),
        traceparent: String? = nil, attempt: Int = 1, route: String? = nil, keyID: String? = nil
    ) {
        self.route = route
        self.keyID = keyID
        self.jobID = jobID
        self.tenant = tenant
        self.provider = provider
        self.model = model
        self.request = request
        self.maxOutputTokens = maxOutputTokens
        self.stream = stream
        self.metadata = metadata
        self.traceparent = traceparent
        self.attempt = attempt
    }
}

/// A tool call the model asked for, with its arguments as a complete JSON text.
public struct ToolCall: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// Rate-limit headroom a provider reported in its response headers (both wire formats are
/// normalised here), for the limiter to learn from.
public struct RateLimitSnapshot: Sendable, Hashable {
    public var requestsLimit: Int?
    public var requestsRemaining: Int?
    public var requestsReset: Duration?
    public var tokensLimit: Int?
    public var tokensRemaining: Int?
    public var tokensReset: Duration?

    public init(
        requestsLimit: Int? = nil, requestsRemaining: Int? = nil, requestsReset: Duration? = nil,
        tokensLimit: Int? = nil, tokensRemaining: Int? = nil, tokensReset: Duration? = nil
    ) {
        self.requestsLimit = requestsLimit
        self.requestsRemaining = requestsRemaining
        self.requestsReset = requestsReset
        self.tokensLimit = tokensLimit
        self.tokensRemaining = tokensRemaining
        self.tokensReset = tokensReset
    }
}

/// The outcome of a successful attempt.
public struct ProviderResult: Sendable {
    public var text: String
    public var toolCalls: [ToolCall]
    public var finishReason: String?
    /// The provider's response as JSON; for streams, reassembled into the non-streaming shape.
    public var rawResponse: [UInt8]
    public var usage: Usage
    /// USD for this attempt from the price table, nil when the model has no price.
    public var costUSD: Double?
    /// The model the provider reported (may differ from the requested alias).
    public var model: String
    public var provider: String
    public var latency: Duration
    public var timeToFirstToken: Duration?
    public var httpStatus: Int?
    public var rateLimits: RateLimitSnapshot?

    public init(
        text: String, toolCalls: [ToolCall] = [], finishReason: String?, rawResponse: [UInt8],
        usage: Usage, costUSD: Double?, model: String, provider: String, latency: Duration,
        timeToFirstToken: Duration?, httpStatus: Int? = nil, rateLimits: RateLimitSnapshot? = nil
    ) {
        self.text = text
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.rawResponse = rawResponse
        self.usage = usage
        self.costUSD = costUSD
        self.model = model
        self.provider = provider
        self.latency = latency
        self.timeToFirstToken = timeToFirstToken
        self.httpStatus = httpStatus
        self.rateLimits = rateLimits
    }
}

/// A failed attempt, classified.
///
/// `message` is stored in `sluice.attempts` and dead letters and shown to operators, so it may
/// never contain an API key or the request's secrets: providers redact it (SluiceProviders'
/// `SecretRedactor` removes their configured keys), and the initialiser replaces anything that
/// still looks like a key (`sk-…`, `Bearer …`). The fields are read-only outside this module.
///
/// `description` is the code, the message and the HTTP status; `debugDescription` adds the
/// retry verdict, usage, cost and rate-limit snapshot.
public struct ProviderFailure: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind of failure: the ``ErrorClass`` the worker's retry decision reads, as an
    /// extensible code (compare with `==`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stored class.
        public let errorClass: ErrorClass
        init(_ errorClass: ErrorClass) { self.errorClass = errorClass }
        /// The class's stored name, e.g. `rate_limited`.
        public var description: String { errorClass.rawValue }

        public static let rateLimited = Code(.rateLimited)
        public static let overloaded = Code(.overloaded)
        public static let serverError = Code(.serverError)
        public static let timeout = Code(.timeout)
        public static let connection = Code(.connection)
        public static let invalidRequest = Code(.invalidRequest)
        public static let contextLength = Code(.contextLength)
        public static let auth = Code(.auth)
        public static let notFound = Code(.notFound)
        public static let contentFilter = Code(.contentFilter)
        public static let cancelled = Code(.cancelled)
        public static let `internal` = Code(.internal)
    }

    public internal(set) var errorClass: ErrorClass
    public internal(set) var message: String
    public internal(set) var httpStatus: Int?
    /// When the provider said to retry (Retry-After / retry-after-ms), if it did.
    public internal(set) var retryAfter: Duration?
    /// The provider's `x-should-retry` verdict, when it sent one; it overrides the class.
    public internal(set) var shouldRetry: Bool?
    /// Usage the provider actually reported before failing (e.g. a cut stream), never estimated.
    public internal(set) var usage: Usage?
    public internal(set) var costUSD: Double?
    public internal(set) var rateLimits: RateLimitSnapshot?

    /// Creates a failure. Provider implementations in any module throw these (see
    /// ``LLMProvider``); `message` should already be redacted, and key-shaped tokens in it are
    /// replaced by `<redacted>` here.
    public init(
        _ errorClass: ErrorClass, _ message: String, httpStatus: Int? = nil, retryAfter: Duration? = nil,
        shouldRetry: Bool? = nil, usage: Usage? = nil, costUSD: Double? = nil, rateLimits: RateLimitSnapshot? = nil
    ) {
        self.errorClass = errorClass
        self.message = Redacted.scrubbingKeyShapedTokens(message)
        self.httpStatus = httpStatus
        self.retryAfter = retryAfter
        self.shouldRetry = shouldRetry
        self.usage = usage
        self.costUSD = costUSD
        self.rateLimits = rateLimits
    }

    /// The kind of failure, as a code.
    public var code: Code { Code(errorClass) }

    /// Whether the worker may try again (the provider's explicit verdict wins over the class).
    public var isRetryable: Bool { shouldRetry ?? errorClass.isRetryable }

    /// `ProviderFailure.<code>: <message> (HTTP <status>)` — safe to log.
    public var description: String {
        ErrorFormat.summary("ProviderFailure", code: code, message) + (httpStatus.map { " (HTTP \($0))" } ?? "")
    }

    public var debugDescription: String {
        ErrorFormat.debug("ProviderFailure", code: code, [
            ("message", message), ("httpStatus", httpStatus), ("retryAfter", retryAfter), ("shouldRetry", shouldRetry),
            ("usage", usage), ("costUSD", costUSD), ("rateLimits", rateLimits),
        ])
    }
}
