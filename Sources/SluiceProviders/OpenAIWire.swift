import Sluice
import SluiceJSON

/// OpenAI Chat Completions wire types (only the fields Sluice reads).
enum OpenAIWire {
    struct Usage: Codable, Sendable, Hashable {
        struct PromptDetails: Codable, Sendable, Hashable {
            var cachedTokens: Int?
            var audioTokens: Int?
            enum CodingKeys: String, CodingKey {
                case cachedTokens = "cached_tokens"
                case audioTokens = "audio_tokens"
            }
        }
        struct CompletionDetails: Codable, Sendable, Hashable {
            var reasoningTokens: Int?
            enum CodingKeys: String, CodingKey {
                case reasoningTokens = "reasoning_tokens"
            }
        }
        var promptTokens: Int?
        var completionTokens: Int?
        var totalTokens: Int?
        var promptTokensDetails: PromptDetails?
        var completionTokensDetails: CompletionDetails?

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case totalTokens = "total_tokens"
            case promptTokensDetails = "prompt_tokens_details"
            case completionTokensDetails = "completion_tokens_details"
        }

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

    struct ErrorObject: Decodable, Sendable {
        var message: String?
        var type: String?
        var code: JSONValue?
        var codeText: String? { code?.stringValue ?? code?.intValue.map(String.init) }
    }

    struct FunctionDelta: Decodable, Sendable {
        var name: String?
        var arguments: String?
    }

    struct ToolCallDelta: Decodable, Sendable {
        var index: Int?
        var id: String?
        var type: String?
        var function: FunctionDelta?
    }

    struct Delta: Decodable, Sendable {
        var role: String?
        var content: String?
        var refusal: String?
        var toolCalls: [ToolCallDelta]?
        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls"
        }
    }

    struct ChunkChoice: Decodable, Sendable {
        var index: Int?
        var delta: Delta?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, delta
            case finishReason = "finish_reason"
        }
    }

    /// One `chat.completion.chunk` (or an in-stream `{"error":…}`).
    struct Chunk: Decodable, Sendable {
        var id: String?
        var model: String?
        var created: Int?
        var systemFingerprint: String?
        var choices: [ChunkChoice]?
        var usage: Usage?
        var error: ErrorObject?
        enum CodingKeys: String, CodingKey {
            case id, model, created, choices, usage, error
            case systemFingerprint = "system_fingerprint"
        }
    }

    struct Function: Decodable, Sendable {
        var name: String?
        var arguments: String?
    }

    struct MessageToolCall: Decodable, Sendable {
        var id: String?
        var type: String?
        var function: Function?
    }

    struct Message: Decodable, Sendable {
        var role: String?
        var content: String?
        var refusal: String?
        var toolCalls: [MessageToolCall]?
        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls"
        }
    }

    struct Choice: Decodable, Sendable {
        var index: Int?
        var message: Message?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, message
            case finishReason = "finish_reason"
        }
    }

    /// A non-streaming `chat.completion`.
    struct Response: Decodable, Sendable {
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: ErrorObject?
    }
}
