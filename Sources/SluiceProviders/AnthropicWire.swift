import Sluice
import SluiceJSON

/// Anthropic Messages wire types (only the fields Sluice reads).
enum AnthropicWire {
    struct Usage: Codable, Sendable, Hashable {
        var inputTokens: Int?
        var outputTokens: Int?
        var cacheReadInputTokens: Int?
        var cacheCreationInputTokens: Int?
        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
            case cacheReadInputTokens = "cache_read_input_tokens"
            case cacheCreationInputTokens = "cache_creation_input_tokens"
        }

        /// Later values win field by field (`message_delta` usage is cumulative).
        mutating func merge(_ other: Usage) {
            if let value = other.inputTokens { inputTokens = value }
            if let value = other.outputTokens { outputTokens = value }
            if let value = other.cacheReadInputTokens { cacheReadInputTokens = value }
            if let value = other.cacheCreationInputTokens { cacheCreationInputTokens = value }
        }

        /// One to one: Anthropic's `input_tokens` already excludes cache reads and writes.
        var normalized: Sluice.Usage {
            Sluice.Usage(
                inputTokens: max(0, inputTokens ?? 0), outputTokens: max(0, outputTokens ?? 0),
                cacheReadTokens: max(0, cacheReadInputTokens ?? 0), cacheWriteTokens: max(0, cacheCreationInputTokens ?? 0)
            )
        }

        var json: JSONValue {
            .object([
                "input_tokens": .number(Double(inputTokens ?? 0)),
                "output_tokens": .number(Double(outputTokens ?? 0)),
                "cache_read_input_tokens": .number(Double(cacheReadInputTokens ?? 0)),
                "cache_creation_input_tokens": .number(Double(cacheCreationInputTokens ?? 0)),
            ])
        }
    }

    struct ErrorObject: Decodable, Sendable {
        var type: String?
        var message: String?
    }

    struct MessageStart: Decodable, Sendable {
        var id: String?
        var model: String?
        var role: String?
        var usage: Usage?
    }

    struct Delta: Decodable, Sendable {
        var type: String?
        var text: String?
        var partialJSON: String?
        var thinking: String?
        var signature: String?
        var stopReason: String?
        var stopSequence: String?
        enum CodingKeys: String, CodingKey {
            case type, text, thinking, signature
            case partialJSON = "partial_json"
            case stopReason = "stop_reason"
            case stopSequence = "stop_sequence"
        }
    }

    /// One streamed event's data.
    struct Event: Decodable, Sendable {
        var type: String?
        var message: MessageStart?
        var index: Int?
        var contentBlock: JSONValue?
        var delta: Delta?
        var usage: Usage?
        var error: ErrorObject?
        enum CodingKeys: String, CodingKey {
            case type, message, index, delta, usage, error
            case contentBlock = "content_block"
        }
    }

    /// A non-streaming `message`.
    struct Response: Decodable, Sendable {
        var id: String?
        var type: String?
        var model: String?
        var content: [JSONValue]?
        var stopReason: String?
        var usage: Usage?
        var error: ErrorObject?
        enum CodingKeys: String, CodingKey {
            case id, type, model, content, usage, error
            case stopReason = "stop_reason"
        }
    }
}
