import SluiceJSON

/// Why generation ended.
enum MockFinishReason: Sendable {
    /// Natural end (OpenAI `stop`, Anthropic `end_turn`).
    case stop
    /// `max_tokens` cut the output (OpenAI `length`, Anthropic `max_tokens`).
    case length
    /// The answer is tool calls (OpenAI `tool_calls`, Anthropic `tool_use`).
    case toolCalls
}

/// One tool call of a `tools=N` answer.
struct MockToolCall: Sendable {
    /// 0-based position among the parallel calls.
    var index: Int
    var id: String
    /// `tool_<index>`.
    var name: String
    /// The complete arguments JSON object text, `{"i":<index>,"q":"<word>"}`.
    var arguments: String
    /// `arguments` split into three fragments (streamed one per chunk).
    var fragments: [String]
}

/// The full deterministic answer to one request, rendered by a wire format.
struct MockCompletion: Sendable {
    var id: String
    var model: String
    var created: Int
    /// Streamed text pieces (one token each); empty for tool answers.
    var pieces: [String]
    var toolCalls: [MockToolCall]
    var inputTokens: Int
    var cachedTokens: Int
    var cacheWriteTokens: Int
    var finish: MockFinishReason

    /// Output tokens: one per text piece, one per tool-argument fragment.
    var outputTokens: Int {
        pieces.count + toolCalls.reduce(0) { $0 + $1.fragments.count }
    }

    var text: String { pieces.joined() }

    /// Builds the answer per the rules in ``MockProviderOutput``.
    static func make(
        format: MockWireFormat, request: MockCompletionRequest, directives: MockDirectives, defaultTokens: Int
    ) -> MockCompletion {
        let id = format == .openAI ? MockIDs.make("chatcmpl-") : MockIDs.make("msg_")
        let inputTokens = request.inputTokens
        let cached: Int
        switch format {
        case .openAI: cached = min(directives.cached ?? 0, inputTokens)
        case .anthropic: cached = directives.cached ?? 0
        }
        var completion = MockCompletion(
            id: id, model: request.model, created: MockIDs.unixTime(), pieces: [], toolCalls: [],
            inputTokens: inputTokens, cachedTokens: cached,
            cacheWriteTokens: format == .anthropic ? (directives.cacheWrite ?? 0) : 0, finish: .stop
        )
        if let tools = directives.tools, tools > 0 {
            let words = MockProviderOutput.words(in: request.lastUserText)
            completion.toolCalls = (0..<tools).map { i in
                let word = JSONString.quoted(words[i % words.count])
                let fragments = ["{\"i\":\(i),", "\"q\":", "\(word)}"]
                return MockToolCall(
                    index: i, id: format == .openAI ? MockIDs.make("call_") : MockIDs.make("toolu_"),
                    name: "tool_\(i)", arguments: fragments.joined(), fragments: fragments
                )
            }
            completion.finish = .toolCalls
        } else {
            let wanted = directives.tokens ?? defaultTokens
            let emitted = min(wanted, request.maxTokens ?? Int.max)
            completion.pieces = MockProviderOutput.tokens(forPrompt: request.lastUserText, tokens: emitted)
            completion.finish = emitted < wanted ? .length : .stop
        }
        return completion
    }
}
