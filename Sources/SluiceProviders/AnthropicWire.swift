import Sluice
import SluiceJSON

/// Anthropic Messages wire types (only the fields Sluice reads), read with SluiceJSON under
/// `JSONDecoder`'s rules for optional properties (``JSONObjectReadable``).
enum AnthropicWire {
    struct Usage: JSONObjectReadable, Sendable, Hashable {
        var inputTokens: Int?
        var outputTokens: Int?
        var cacheReadInputTokens: Int?
        var cacheCreationInputTokens: Int?
        static let jsonMembers: JSONMembers<Self> = [
            "input_tokens": { $0.inputTokens = try $1.read() }, "output_tokens": { $0.outputTokens = try $1.read() },
            "cache_read_input_tokens": { $0.cacheReadInputTokens = try $1.read() },
            "cache_creation_input_tokens": { $0.cacheCreationInputTokens = try $1.read() },
        ]

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

    struct ErrorObject: JSONObjectReadable, Sendable {
        var type: String?
        var message: String?
        static let jsonMembers: JSONMembers<Self> = [
            "type": { $0.type = try $1.read() }, "message": { $0.message = try $1.read() },
        ]
    }

    struct MessageStart: JSONObjectReadable, Sendable {
        var id: String?
        var model: String?
        var role: String?
        var usage: Usage?
        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "model": { $0.model = try $1.read() }, "role": { $0.role = try $1.read() },
            "usage": { $0.usage = try $1.read() },
        ]
    }

    struct Delta: JSONObjectReadable, Sendable {
        var type: String?
        var text: String?
        var partialJSON: String?
        var thinking: String?
        var signature: String?
        var stopReason: String?
        var stopSequence: String?
        static let jsonMembers: JSONMembers<Self> = [
            "type": { $0.type = try $1.read() }, "text": { $0.text = try $1.read() },
            "partial_json": { $0.partialJSON = try $1.read() }, "thinking": { $0.thinking = try $1.read() },
            "signature": { $0.signature = try $1.read() }, "stop_reason": { $0.stopReason = try $1.read() },
            "stop_sequence": { $0.stopSequence = try $1.read() },
        ]
    }

    /// One streamed event's data.
    struct Event: JSONObjectReadable, Sendable {
        var type: String?
        var message: MessageStart?
        var index: Int?
        var contentBlock: JSONValue?
        var delta: Delta?
        var usage: Usage?
        var error: ErrorObject?
        static let jsonMembers: JSONMembers<Self> = [
            "type": { $0.type = try $1.read() }, "message": { $0.message = try $1.read() }, "index": { $0.index = try $1.read() },
            "content_block": { $0.contentBlock = try $1.read() }, "delta": { $0.delta = try $1.read() },
            "usage": { $0.usage = try $1.read() }, "error": { $0.error = try $1.read() },
        ]
    }

    /// A non-streaming `message`.
    struct Response: JSONObjectReadable, Sendable {
        var id: String?
        var type: String?
        var model: String?
        var content: [JSONValue]?
        var stopReason: String?
        var usage: Usage?
        var error: ErrorObject?
        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "type": { $0.type = try $1.read() }, "model": { $0.model = try $1.read() },
            "content": { $0.content = try $1.read() }, "stop_reason": { $0.stopReason = try $1.read() },
            "usage": { $0.usage = try $1.read() }, "error": { $0.error = try $1.read() },
        ]
    }
}
