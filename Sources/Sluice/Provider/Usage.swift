/// Token usage of one provider call, normalised across providers.
///
/// `inputTokens` counts only the uncached input, so the four fields never overlap and cost is
/// a plain sum of `tokens × price`: for OpenAI, `inputTokens = prompt_tokens − cached_tokens`
/// and `cacheReadTokens = cached_tokens`; for Anthropic the fields map one to one
/// (`input_tokens` already excludes cache reads and writes).
public struct Usage: Sendable, Hashable, Codable {
    public var inputTokens: Int
    public var outputTokens: Int
    public var cacheReadTokens: Int
    public var cacheWriteTokens: Int

    public init(inputTokens: Int = 0, outputTokens: Int = 0, cacheReadTokens: Int = 0, cacheWriteTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
    }

    /// All tokens of the call, the quantity TPM limits count.
    public var totalTokens: Int { inputTokens + outputTokens + cacheReadTokens + cacheWriteTokens }

    public static let zero = Usage()
}
