import Sluice

/// What a provider response amounts to once parsed (streamed or not), before timing and cost
/// are added to make a ``ProviderResult``.
struct Completion: Sendable {
    var text: String
    var toolCalls: [ToolCall]
    var finishReason: String?
    /// The response in the provider's non-streaming JSON shape.
    var rawResponse: [UInt8]
    var usage: Usage
    /// The model the provider reported, if it did.
    var model: String?
}

/// Incremental parsing of one provider's event stream.
protocol StreamAccumulator: Sendable {
    init(configuration: SSEParser.Configuration)
    /// Consumes one network chunk. Returns true when this chunk carried the first content or
    /// tool-call token (for time to first token). Throws the failure the stream reported or
    /// caused (malformed data, an in-stream error event).
    mutating func feed(_ chunk: [UInt8]) throws(ProviderFailure) -> Bool
    /// Whether the stream's terminal marker has been seen (no more data is expected).
    var isComplete: Bool { get }
    /// The completed response; throws when the stream ended without its terminal marker.
    func finish() throws(ProviderFailure) -> Completion
    /// Usage the provider actually reported so far, nil when it reported none.
    var reportedUsage: Usage? { get }
}
