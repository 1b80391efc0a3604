/// How a failed attempt failed. The worker decides retry vs dead letter from this alone, so
/// every layer that can fail (provider clients, HTTP, the worker itself) maps its errors here.
public enum ErrorClass: String, Sendable, Codable, CaseIterable {
    case rateLimited = "rate_limited"
    case overloaded
    case serverError = "server_error"
    case timeout
    case connection
    case invalidRequest = "invalid_request"
    case contextLength = "context_length"
    case auth
    case notFound = "not_found"
    case contentFilter = "content_filter"
    case cancelled
    case `internal`

    /// Whether another attempt may succeed. Non-retryable classes go to dead letters at once.
    public var isRetryable: Bool {
        switch self {
        case .rateLimited, .overloaded, .serverError, .timeout, .connection, .internal: true
        case .invalidRequest, .contextLength, .auth, .notFound, .contentFilter, .cancelled: false
        }
    }
}
