/// Why the mock answers with an error; the wire format turns it into its own body shape.
enum MockErrorReason: Sendable {
    /// A `status=CODE` directive or a random fault: the status's usual provider error.
    case injected
    /// `context=1`: the prompt is longer than the model's context window.
    case contextTooLong(inputTokens: Int)
    /// The mock's own RPM/TPM limit (tokens: whether the token limit was the one exceeded).
    case rateLimited(tokens: Bool)
    /// Missing or unknown API key.
    case invalidAPIKey
    /// The request is malformed (message says how).
    case invalidRequest(String)
}

/// Renders bodies and stream events in one provider's wire format.
protocol MockWireRenderer: Sendable {
    /// The `content-type` of a streaming response.
    var streamContentType: String { get }
    /// The complete non-streaming response body.
    func body(for completion: MockCompletion) -> String
    /// The whole planned stream.
    func streamEvents(for completion: MockCompletion, includeUsage: Bool) -> [MockStreamEvent]
    /// The in-stream error sent by `error_after`.
    func streamErrorEvent(requestID: String) -> String
    /// The invalid-JSON event sent by `malformed_after`.
    func malformedEvent() -> String
    /// An error response body.
    func errorBody(status: Int, reason: MockErrorReason, requestID: String) -> String
}

extension MockWireFormat {
    var renderer: any MockWireRenderer {
        switch self {
        case .openAI: MockOpenAIRenderer()
        case .anthropic: MockAnthropicRenderer()
        }
    }
}
