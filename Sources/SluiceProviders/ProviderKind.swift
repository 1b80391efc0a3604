/// The wire format a configured provider speaks.
public enum ProviderKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// OpenAI Chat Completions (also OpenAI-compatible servers: vLLM, Azure-style gateways…).
    case openai
    /// Anthropic Messages.
    case anthropic
    /// The built-in echo provider (no network).
    case echo
}
