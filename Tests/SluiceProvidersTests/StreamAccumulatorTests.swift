import Foundation
import Sluice
import SluiceJSON
import Testing
@testable import SluiceProviders

/// The stream accumulators fed with raw byte chunks (no network), split at awkward places.
@Suite("Stream accumulators")
struct StreamAccumulatorTests {
    static let openAIStream = """
    data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

    data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}

    data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}

    data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

    data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":8}}}

    data: [DONE]


    """

    func feed<A: StreamAccumulator>(_ type: A.Type, _ text: String, chunkSize: Int) throws(ProviderFailure) -> A {
        var accumulator = A(configuration: .init())
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + chunkSize)
            _ = try accumulator.feed(Array(bytes[index..<end]))
            index = end
        }
        return accumulator
    }

    @Test(arguments: [1, 7, 64, 100_000])
    func openAITextAndUsage(_ chunkSize: Int) throws {
        let completion = try feed(OpenAIStreamAccumulator.self, Self.openAIStream, chunkSize: chunkSize).finish()
        #expect(completion.text == "Hello")
        #expect(completion.finishReason == "stop")
        #expect(completion.usage == Usage(inputTokens: 12, outputTokens: 2, cacheReadTokens: 8))
        #expect(completion.model == "gpt-4o-mini-2024-07-18")
        let raw = try JSONValue.parse(completion.rawResponse)
        #expect(raw["object"]?.stringValue == "chat.completion")
        #expect(raw["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "Hello")
        #expect(raw["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue == 8)
    }

    @Test func openAIWithoutDoneIsAConnectionFailureWithReportedUsage() throws {
        let truncated = Self.openAIStream.replacingOccurrences(of: "data: [DONE]", with: "")
        let accumulator = try feed(OpenAIStreamAccumulator.self, truncated, chunkSize: 50)
        #expect(!accumulator.isComplete)
        #expect {
            _ = try accumulator.finish()
        } throws: { error in
            let failure = error as? ProviderFailure
            return failure?.errorClass == .connection && failure?.usage == Usage(inputTokens: 12, outputTokens: 2, cacheReadTokens: 8)
        }
        // Cut before the usage chunk: no invented usage.
        let cut = String(Self.openAIStream.prefix(400))
        let early = try feed(OpenAIStreamAccumulator.self, cut, chunkSize: 50)
        #expect { _ = try early.finish() } throws: { ($0 as? ProviderFailure)?.usage == nil && ($0 as? ProviderFailure)?.errorClass == .connection }
    }

    @Test func openAIMalformedChunk() {
        #expect {
            _ = try feed(OpenAIStreamAccumulator.self, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n", chunkSize: 10)
        } throws: { ($0 as? ProviderFailure)?.errorClass == .connection }
    }

    /// Chunks are read under `JSONDecoder`'s rules for the wire types: `null`, integral
    /// numbers written with a fraction and unknown members are fine, a member of the wrong type
    /// fails the stream.
    @Test func openAIChunkMembersAreTyped() throws {
        let stream = #"data: {"id":null,"created":1.0,"extra":{"nested":[1,{"a":null}]},"choices":[{"index":0,"delta":{"content":"x","tool_calls":null},"logprobs":null,"finish_reason":null}],"usage":null}"#
            + "\n\n" + #"data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"completion_tokens_details":{"reasoning_tokens":2,"x":"y"}}}"#
            + "\n\ndata: [DONE]\n\n"
        let completion = try feed(OpenAIStreamAccumulator.self, stream, chunkSize: 17).finish()
        #expect(completion.text == "x")
        #expect(try JSONValue.parse(completion.rawResponse)["usage"]?["completion_tokens_details"]?["reasoning_tokens"]?.intValue == 2)
        for delta in [#"{"content":5}"#, #"{"content":["x"]}"#, #"{"tool_calls":{}}"#, #"{"tool_calls":[{"index":"0"}]}"#, #"{"role":true}"#] {
            let bad = #"data: {"choices":[{"index":0,"delta":\#(delta)}]}"# + "\n\n"
            #expect("\(delta)") { _ = try feed(OpenAIStreamAccumulator.self, bad, chunkSize: 1000) } throws: {
                ($0 as? ProviderFailure)?.errorClass == .connection
            }
        }
    }

    @Test func openAIInStreamError() {
        #expect {
            _ = try feed(OpenAIStreamAccumulator.self, #"data: {"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"# + "\n\n", chunkSize: 13)
        } throws: { ($0 as? ProviderFailure)?.errorClass == .rateLimited }
    }

    @Test func openAIParallelToolCallsInterleaved() throws {
        func chunk(_ delta: String) -> String {
            #"data: {"choices":[{"index":0,"delta":\#(delta),"finish_reason":null}]}"# + "\n\n"
        }
        var stream = chunk(#"{"role":"assistant","content":null}"#)
        stream += chunk(#"{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}"#)
        stream += chunk(#"{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}}]}"#)
        stream += chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#)
        stream += chunk(#"{"tool_calls":[{"index":1,"function":{"arguments":"\"UTC\"}"}}]}"#)
        stream += chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#)
        stream += #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"# + "\n\n"
        stream += #"data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}"# + "\n\ndata: [DONE]\n\n"
        let completion = try feed(OpenAIStreamAccumulator.self, stream, chunkSize: 33).finish()
        #expect(completion.toolCalls == [
            ToolCall(id: "call_a", name: "get_weather", arguments: #"{"city":"Paris"}"#),
            ToolCall(id: "call_b", name: "get_time", arguments: #"{"tz":"UTC"}"#),
        ])
        #expect(completion.finishReason == "tool_calls")
        let raw = try JSONValue.parse(completion.rawResponse)
        #expect(raw["choices"]?.arrayValue?.first?["message"]?["tool_calls"]?.arrayValue?.count == 2)
        #expect(raw["choices"]?.arrayValue?.first?["message"]?["content"] == .null)
    }

    @Test func openAIInvalidToolArgumentsFail() {
        let stream = #"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}"#
            + "\n\n" + #"data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"# + "\n\ndata: [DONE]\n\n"
        #expect { _ = try feed(OpenAIStreamAccumulator.self, stream, chunkSize: 1000).finish() } throws: { ($0 as? ProviderFailure)?.errorClass == .serverError }
    }

    @Test func openAIContentFilterWithoutContent() {
        let stream = #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#
            + "\n\n" + #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":0}}"# + "\n\ndata: [DONE]\n\n"
        #expect { _ = try feed(OpenAIStreamAccumulator.self, stream, chunkSize: 1000).finish() } throws: { error in
            let failure = error as? ProviderFailure
            return failure?.errorClass == .contentFilter && failure?.usage == Usage(inputTokens: 3)
        }
    }

    static let anthropicStream = """
    event: message_start
    data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":50,"output_tokens":1}}}

    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

    event: ping
    data: {"type": "ping"}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":0}

    event: content_block_start
    data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"q\\": "}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"x\\"}"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":1}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":7}}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":12}}

    event: message_stop
    data: {"type":"message_stop"}


    """

    @Test(arguments: [1, 5, 80, 100_000])
    func anthropicFullStream(_ chunkSize: Int) throws {
        let completion = try feed(AnthropicStreamAccumulator.self, Self.anthropicStream, chunkSize: chunkSize).finish()
        #expect(completion.text == "Hi there")
        #expect(completion.toolCalls == [ToolCall(id: "toolu_1", name: "lookup", arguments: #"{"q": "x"}"#)])
        #expect(completion.finishReason == "tool_use")
        // Cumulative output: the last message_delta wins; cache tokens are additional.
        #expect(completion.usage == Usage(inputTokens: 25, outputTokens: 12, cacheReadTokens: 50, cacheWriteTokens: 100))
        #expect(completion.model == "claude-sonnet-4-5-20250929")
        let raw = try JSONValue.parse(completion.rawResponse)
        #expect(raw["type"]?.stringValue == "message")
        #expect(raw["content"]?.arrayValue?.count == 2)
        #expect(raw["content"]?.arrayValue?.last?["input"]?["q"]?.stringValue == "x")
        #expect(raw["usage"]?["output_tokens"]?.intValue == 12)
    }

    @Test func anthropicWithoutMessageStopFails() throws {
        let cut = Self.anthropicStream.components(separatedBy: "event: message_stop")[0]
        let accumulator = try feed(AnthropicStreamAccumulator.self, cut, chunkSize: 100)
        #expect { _ = try accumulator.finish() } throws: { error in
            let failure = error as? ProviderFailure
            return failure?.errorClass == .connection
                && failure?.usage == Usage(inputTokens: 25, outputTokens: 12, cacheReadTokens: 50, cacheWriteTokens: 100)
        }
    }

    @Test(arguments: [("overloaded_error", ErrorClass.overloaded), ("rate_limit_error", .rateLimited), ("api_error", .serverError)])
    func anthropicErrorEventAfter200(_ type: String, _ expected: ErrorClass) throws {
        let head = Self.anthropicStream.components(separatedBy: "event: content_block_stop")[0]
        let stream = head + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"\(type)\",\"message\":\"Overloaded\"}}\n\n"
        #expect { _ = try feed(AnthropicStreamAccumulator.self, stream, chunkSize: 64) } throws: { error in
            let failure = error as? ProviderFailure
            return failure?.errorClass == expected && failure?.usage?.inputTokens == 25 && failure?.usage?.outputTokens == 1
        }
    }

    @Test func anthropicMalformedEvent() {
        #expect {
            _ = try feed(AnthropicStreamAccumulator.self, "event: content_block_delta\ndata: {oops\n\n", chunkSize: 5)
        } throws: { ($0 as? ProviderFailure)?.errorClass == .connection }
    }

    @Test func anthropicEventMembersAreTyped() throws {
        let pinged = Self.anthropicStream.replacingOccurrences(of: #"{"type": "ping"}"#, with: #"{"type":"ping","extra":[1,{"a":null}],"index":null}"#)
        #expect(try feed(AnthropicStreamAccumulator.self, pinged, chunkSize: 80).finish().text == "Hi there")
        for event in [#"{"type":"content_block_delta","index":"0","delta":{"type":"text_delta","text":"a"}}"#,
                      #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":1}}"#,
                      #"{"type":"message_delta","usage":{"output_tokens":1.5}}"#] {
            #expect("\(event)") { _ = try feed(AnthropicStreamAccumulator.self, "data: \(event)\n\n", chunkSize: 1000) } throws: {
                ($0 as? ProviderFailure)?.errorClass == .connection
            }
        }
    }

    @Test func nonStreamingOpenAIResponse() throws {
        let body = #"{"id":"x","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":4}}}"#
        let completion = try OpenAIStreamAccumulator.parseResponse(Array(body.utf8))
        #expect(completion.text == "ok")
        #expect(completion.usage == Usage(inputTokens: 6, outputTokens: 1, cacheReadTokens: 4))
    }

    @Test func nonStreamingAnthropicResponse() throws {
        let body = #"{"id":"m","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t1","name":"f","input":{"k":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":5,"cache_creation_input_tokens":6}}"#
        let completion = try AnthropicStreamAccumulator.parseResponse(Array(body.utf8))
        #expect(completion.text == "a")
        #expect(completion.toolCalls == [ToolCall(id: "t1", name: "f", arguments: #"{"k":1}"#)])
        #expect(completion.usage == Usage(inputTokens: 3, outputTokens: 4, cacheReadTokens: 5, cacheWriteTokens: 6))
    }
}
