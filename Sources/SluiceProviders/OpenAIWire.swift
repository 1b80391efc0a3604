import Sluice
import SluiceJSON

/// OpenAI Chat Completions wire types (only the fields Sluice reads), read with SluiceJSON under
/// `JSONDecoder`'s rules for optional properties (``JSONObjectReadable``).
enum OpenAIWire {
    struct Usage: JSONObjectReadable, Sendable, Hashable {
        struct PromptDetails: JSONObjectReadable, Sendable, Hashable {
            var cachedTokens: Int?
            var audioTokens: Int?
            static let jsonMembers: JSONMembers<Self> = [
                "cached_tokens": { $0.cachedTokens = try $1.read() }, "audio_tokens": { $0.audioTokens = try $1.read() },
            ]
        }
        struct CompletionDetails: JSONObjectReadable, Sendable, Hashable {
            var reasoningTokens: Int?
            static let jsonMembers: JSONMembers<Self> = ["reasoning_tokens": { $0.reasoningTokens = try $1.read() }]
        }
        var promptTokens: Int?
        var completionTokens: Int?
        var totalTokens: Int?
        var promptTokensDetails: PromptDetails?
        var completionTokensDetails: CompletionDetails?

        static let jsonMembers: JSONMembers<Self> = [
            "prompt_tokens": { $0.promptTokens = try $1.read() }, "completion_tokens": { $0.completionTokens = try $1.read() },
            "total_tokens": { $0.totalTokens = try $1.read() },
            "prompt_tokens_details": { $0.promptTokensDetails = try $1.read() },
            "completion_tokens_details": { $0.completionTokensDetails = try $1.read() },
        ]

        /// Normalised: `inputTokens = prompt_tokens − cached_tokens`, `cacheReadTokens = cached_tokens`.
        var normalized: Sluice.Usage {
            let prompt = promptTokens ?? 0
            let cached = min(max(0, promptTokensDetails?.cachedTokens ?? 0), prompt)
            return Sluice.Usage(inputTokens: max(0, prompt - cached), outputTokens: max(0, completionTokens ?? 0), cacheReadTokens: cached)
        }

        var json: JSONValue {
            var object: [String: JSONValue] = [
                "prompt_tokens": .number(Double(promptTokens ?? 0)),
                "completion_tokens": .number(Double(completionTokens ?? 0)),
                "total_tokens": .number(Double(totalTokens ?? ((promptTokens ?? 0) + (completionTokens ?? 0)))),
            ]
            if let details = promptTokensDetails {
                var members: [String: JSONValue] = [:]
                if let cached = details.cachedTokens { members["cached_tokens"] = .number(Double(cached)) }
                if let audio = details.audioTokens { members["audio_tokens"] = .number(Double(audio)) }
                object["prompt_tokens_details"] = .object(members)
            }
            if let reasoning = completionTokensDetails?.reasoningTokens {
                object["completion_tokens_details"] = .object(["reasoning_tokens": .number(Double(reasoning))])
            }
            return .object(object)
        }
    }

    struct ErrorObject: JSONObjectReadable, Sendable {
        var message: String?
        var type: String?
        var code: JSONValue?
        var codeText: String? { code?.stringValue ?? code?.intValue.map(String.init) }
        static let jsonMembers: JSONMembers<Self> = [
            "message": { $0.message = try $1.read() }, "type": { $0.type = try $1.read() }, "code": { $0.code = try $1.read() },
        ]
    }

    /// The `function` of a tool call, whole or a streamed fragment of one.
    struct Function: JSONObjectReadable, Sendable {
        var name: String?
        var arguments: String?
        static let jsonMembers: JSONMembers<Self> = [
            "name": { $0.name = try $1.read() }, "arguments": { $0.arguments = try $1.read() },
        ]
    }

    struct ToolCallDelta: JSONObjectReadable, Sendable {
        var index: Int?
        var id: String?
        var type: String?
        var function: Function?
        static let jsonMembers: JSONMembers<Self> = [
            "index": { $0.index = try $1.read() }, "id": { $0.id = try $1.read() }, "type": { $0.type = try $1.read() },
            "function": { $0.function = try $1.read() },
        ]
    }

    struct Delta: JSONObjectReadable, Sendable {
        var role: String?
        var content: String?
        var refusal: String?
        var toolCalls: [ToolCallDelta]?
        static let jsonMembers: JSONMembers<Self> = [
            "role": { $0.role = try $1.read() }, "content": { $0.content = try $1.read() },
            "refusal": { $0.refusal = try $1.read() }, "tool_calls": { $0.toolCalls = try $1.read() },
        ]
    }

    struct ChunkChoice: JSONObjectReadable, Sendable {
        var index: Int?
        var delta: Delta?
        var finishReason: String?
        static let jsonMembers: JSONMembers<Self> = [
            "index": { $0.index = try $1.read() }, "delta": { $0.delta = try $1.read() },
            "finish_reason": { $0.finishReason = try $1.read() },
        ]
    }

    /// One `chat.completion.chunk` (or an in-stream `{"error":…}`).
    struct Chunk: JSONObjectReadable, Sendable {
        var id: String?
        var model: String?
        var created: Int?
        var systemFingerprint: String?
        var choices: [ChunkChoice]?
        var usage: Usage?
        var error: ErrorObject?
        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "model": { $0.model = try $1.read() }, "created": { $0.created = try $1.read() },
            "system_fingerprint": { $0.systemFingerprint = try $1.read() }, "choices": { $0.choices = try $1.read() },
            "usage": { $0.usage = try $1.read() }, "error": { $0.error = try $1.read() },
        ]
    }

    struct MessageToolCall: JSONObjectReadable, Sendable {
        var id: String?
        var type: String?
        var function: Function?
        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "type": { $0.type = try $1.read() }, "function": { $0.function = try $1.read() },
        ]
    }

    struct Message: JSONObjectReadable, Sendable {
        var role: String?
        var content: String?
        var refusal: String?
        var toolCalls: [MessageToolCall]?
        static let jsonMembers: JSONMembers<Self> = [
            "role": { $0.role = try $1.read() }, "content": { $0.content = try $1.read() },
            "refusal": { $0.refusal = try $1.read() }, "tool_calls": { $0.toolCalls = try $1.read() },
        ]
    }

    struct Choice: JSONObjectReadable, Sendable {
        var index: Int?
        var message: Message?
        var finishReason: String?
        static let jsonMembers: JSONMembers<Self> = [
            "index": { $0.index = try $1.read() }, "message": { $0.message = try $1.read() },
            "finish_reason": { $0.finishReason = try $1.read() },
        ]
    }

    /// A non-streaming `chat.completion`.
    struct Response: JSONObjectReadable, Sendable {
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: ErrorObject?
        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "model": { $0.model = try $1.read() }, "choices": { $0.choices = try $1.read() },
            "usage": { $0.usage = try $1.read() }, "error": { $0.error = try $1.read() },
        ]
    }
}
