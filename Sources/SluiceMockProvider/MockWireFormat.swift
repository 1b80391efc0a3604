/// The two wire formats the mock serves on one port.
public enum MockWireFormat: String, Sendable, Hashable {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    case openAI = "openai"
    /// Anthropic Messages (`POST /v1/messages`).
    case anthropic
}
