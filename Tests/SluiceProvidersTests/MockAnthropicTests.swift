import SluiceMockProvider
import Testing

@Suite("Mock Anthropic wire format")
struct MockAnthropicTests {
    static func body(_ prompt: String, stream: Bool = false, maxTokens: Int? = 64) -> String {
        var body = "{\"model\":\"claude-sonnet-4-5\",\"system\":\"sys prompt\",\"messages\":[{\"role\":\"user\",\"content\":\(mockQuoted(prompt))}]"
        if stream { body += ",\"stream\":true" }
        if let maxTokens { body += ",\"max_tokens\":\(maxTokens)" }
        return body + "}"
    }

    @Test func nonStreamingMessageFollowsTheRules() async throws {
        try await withMock { mock in
            let prompt = "hello world"
            let r = try await MockClient.anthropic(port: mock.port, body: Self.body(prompt, maxTokens: 3), mock: "cached=7,cache_write=5")
            #expect(r.status == 200)
            let json = try #require(r.json)
            #expect(json[path: "type"] as? String == "message")
            #expect(json[path: "content", "0", "type"] as? String == "text")
            #expect(json[path: "content", "0", "text"] as? String == "hello world hello")
            #expect(json[path: "stop_reason"] as? String == "max_tokens")
            #expect(json[path: "usage", "input_tokens"] as? Int == MockProviderOutput.inputTokens(texts: ["sys prompt", prompt]))
            #expect(json[path: "usage", "output_tokens"] as? Int == 3)
            #expect(json[path: "usage", "cache_read_input_tokens"] as? Int == 7)
            #expect(json[path: "usage", "cache_creation_input_tokens"] as? Int == 5)
            #expect(r.headers["request-id"]?.hasPrefix("req_") == true)
            #expect(r.headers["anthropic-ratelimit-requests-limit"] != nil)
            #expect(r.headers["anthropic-ratelimit-tokens-reset"]?.hasSuffix("Z") == true)
        }
    }

    @Test func streamHasTheMessagesEventSequence() async throws {
        try await withMock { mock in
            let prompt = "a b c [[mock: tokens=3]]"
            let r = try await MockClient.anthropic(port: mock.port, body: Self.body(prompt, stream: true))
            #expect(r.completeBody)
            let names = r.events.map { $0.event ?? "" }
            #expect(names == [
                "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                "content_block_delta", "content_block_stop", "message_delta", "message_stop",
            ])
            let json = r.jsonEvents
            #expect(json[0]?[path: "message", "usage", "output_tokens"] as? Int == 1)
            #expect(json[0]?[path: "message", "usage", "input_tokens"] as? Int == MockProviderOutput.inputTokens(texts: ["sys prompt", prompt]))
            #expect(json[0]?[path: "message", "usage", "cache_read_input_tokens"] as? Int == 0)
            let deltas = json[3...5].compactMap { $0?[path: "delta", "text"] as? String }
            #expect(deltas == MockProviderOutput.tokens(forPrompt: prompt, tokens: 3))
            #expect(json[7]?[path: "delta", "stop_reason"] as? String == "end_turn")
            #expect(json[7]?[path: "usage", "output_tokens"] as? Int == 3)
        }
    }

    @Test func toolUseStreamsInputJSONDeltas() async throws {
        try await withMock { mock in
            let r = try await MockClient.anthropic(port: mock.port, body: Self.body("look up", stream: true), mock: "tools=2")
            var partial: [Int: String] = [:]
            var blocks: [Int: String] = [:]
            for event in r.jsonEvents {
                guard let event else { continue }
                if event["type"] as? String == "content_block_start", let index = event["index"] as? Int {
                    #expect(event[path: "content_block", "type"] as? String == "tool_use")
                    blocks[index] = event[path: "content_block", "name"] as? String
                }
                if event[path: "delta", "type"] as? String == "input_json_delta", let index = event["index"] as? Int {
                    partial[index, default: ""] += event[path: "delta", "partial_json"] as? String ?? ""
                }
            }
            #expect(blocks == [0: "tool_0", 1: "tool_1"])
            #expect(partial[1] == "{\"i\":1,\"q\":\"up\"}")
            let stop = r.jsonEvents.compactMap { $0?[path: "delta", "stop_reason"] as? String }
            #expect(stop == ["tool_use"])
        }
    }

    @Test func nonStreamingToolUse() async throws {
        try await withMock { mock in
            let r = try await MockClient.anthropic(port: mock.port, body: Self.body("x"), mock: "tools=1")
            let json = try #require(r.json)
            #expect(json[path: "content", "0", "type"] as? String == "tool_use")
            #expect(json[path: "content", "0", "input", "i"] as? Int == 0)
            #expect(json[path: "stop_reason"] as? String == "tool_use")
        }
    }

    @Test func versionHeaderAndMaxTokensAreRequired() async throws {
        try await withMock { mock in
            let noVersion = try await MockClient.anthropic(port: mock.port, body: Self.body("x"), version: false)
            #expect(noVersion.status == 400)
            #expect(noVersion.json?[path: "error", "type"] as? String == "invalid_request_error")
            let noMax = try await MockClient.anthropic(port: mock.port, body: Self.body("x", maxTokens: nil))
            #expect(noMax.status == 400)
            #expect((noMax.json?[path: "error", "message"] as? String)?.contains("max_tokens") == true)
        }
    }
}
