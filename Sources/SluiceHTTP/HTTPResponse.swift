/// A response whose head (status and headers) has arrived; the body streams through ``body``.
public struct HTTPResponse: Sendable {
    /// The status code (4xx and 5xx are ordinary responses, not errors).
    public var status: Int
    /// The response header fields, in received order.
    public var headers: HTTPHeaders
    /// The negotiated protocol version: `"1.0"`, `"1.1"`, `"2"`, or `nil` if unknown.
    public var httpVersion: String?
    /// The body, a single-consumer stream of byte chunks. Dropping it aborts the transfer.
    public var body: HTTPBody

    public init(status: Int, headers: HTTPHeaders, httpVersion: String?, body: HTTPBody) {
        self.status = status
        self.headers = headers
        self.httpVersion = httpVersion
        self.body = body
    }
}
