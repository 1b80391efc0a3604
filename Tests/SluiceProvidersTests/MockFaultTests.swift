import SluiceMockProvider
import Testing
import Foundation

@Suite("Mock error and stream-fault directives")
struct MockFaultTests {
    static let openAIStream = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"w1 w2 w3\"}]}"
    static let anthropicStream = "{\"model\":\"m\",\"stream\":true,\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"w1 w2 w3\"}]}"
    static let openAIPlain = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    static let anthropicPlain = "{\"model\":\"m\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

    @Test(arguments: [
        (429, "rate_limit_exceeded", "rate_limit_error"),
        (529, nil, "overloaded_error"),
        (500, nil, "api_error"),
        (503, nil, "api_error"),
        (401, "invalid_api_key", "authentication_error"),
        (404, "model_not_found", "not_found_error"),
    ] as [(Int, String?, String)])
    func statusDirectiveUsesEachProvidersErrorShape(status: Int, openAICode: String?, anthropicType: String) async throws {
        try await withMock { mock in
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIPlain, mock: "status=\(status)")
            #expect(o.status == status)
            #expect(o.json?[path: "error", "code"] as? String == openAICode)
            #expect(o.json?[path: "error", "message"] is String)
            #expect(o.json?[path: "error", "type"] is String)
            let a = try await MockClient.anthropic(port: mock.port, body: Self.anthropicPlain, mock: "status=\(status)")
            #expect(a.status == status)
            #expect(a.json?[path: "type"] as? String == "error")
            #expect(a.json?[path: "error", "type"] as? String == anthropicType)
        }
    }

    @Test func contextTooLongBodies() async throws {
        try await withMock { mock in
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIPlain, mock: "status=400,context=1")
            #expect(o.status == 400)
            #expect(o.json?[path: "error", "code"] as? String == "context_length_exceeded")
            let a = try await MockClient.anthropic(port: mock.port, body: Self.anthropicPlain, mock: "status=400,context=1")
            let message = try #require(a.json?[path: "error", "message"] as? String)
            #expect(message.hasPrefix("prompt is too long: "))
            #expect(message.hasSuffix("maximum"))
        }
    }

    @Test func retryHeadersOnErrors() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.openAIPlain, mock: "status=503,retry_after_ms=1500,should_retry=false")
            #expect(r.headers["retry-after-ms"] == "1500")
            #expect(r.headers["retry-after"] == "2")
            #expect(r.headers["x-should-retry"] == "false")
        }
    }

    @Test func failTimesCountsPerDirectiveAndPrompt() async throws {
        try await withMock { mock in
            let body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"retry me [[mock: status=500,fail_times=2]]\"}]}"
            var statuses: [Int] = []
            for _ in 0..<3 { statuses.append(try await MockClient.openAI(port: mock.port, body: body).status) }
            #expect(statuses == [500, 500, 200])
            let other = body.replacingOccurrences(of: "retry me", with: "another prompt")
            #expect(try await MockClient.openAI(port: mock.port, body: other).status == 500)
        }
    }

    @Test func invalidDirectiveIs400() async throws {
        try await withMock { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.openAIPlain, mock: "bogus=1")
            #expect(r.status == 400)
            #expect((r.json?[path: "error", "message"] as? String)?.contains("bogus") == true)
        }
    }

    @Test func disconnectAfterClosesWithoutTerminator() async throws {
        try await withMock { mock in
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIStream, mock: "disconnect_after=2")
            #expect(o.status == 200)
            #expect(!o.completeBody)
            #expect(!o.timedOut)
            let contents = o.jsonEvents.compactMap { $0?[path: "choices", "0", "delta", "content"] as? String }.filter { !$0.isEmpty }
            #expect(contents == ["w1", " w2"])
            #expect(!o.body.contains("[DONE]"))
            let a = try await MockClient.anthropic(port: mock.port, body: Self.anthropicStream, mock: "disconnect_after=1")
            #expect(!a.completeBody)
            #expect(a.events.filter { $0.event == "content_block_delta" }.count == 1)
            #expect(!a.events.contains { $0.event == "message_stop" })
        }
    }

    @Test func stallAfterKeepsTheConnectionSilent() async throws {
        try await withMock { mock in
            let r = try await MockClient.anthropic(port: mock.port, body: Self.anthropicStream, mock: "stall_after=2", readTimeout: .seconds(8))
            #expect(r.timedOut)
            #expect(!r.completeBody)
            #expect(r.events.filter { $0.event == "content_block_delta" }.count == 2)
            // (8 s of silence: long enough for the head and two deltas on a loaded machine, where
            // 3 s fell short with the whole suite running in parallel; the stall itself is endless.) The client left; the stalled request notices and ends.
            for _ in 0..<250 where mock.stats.activeStreams > 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(mock.stats.activeStreams == 0)
        }
    }

    @Test func truncateEndsTheResponseWithoutTerminalMarker() async throws {
        try await withMock { mock in
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIStream, mock: "truncate=1,tokens=3")
            #expect(o.completeBody)
            #expect(!o.body.contains("[DONE]"))
            #expect(!o.jsonEvents.contains { $0?[path: "usage", "completion_tokens"] != nil })
            let a = try await MockClient.anthropic(port: mock.port, body: Self.anthropicStream, mock: "truncate=1,tokens=3")
            #expect(a.completeBody)
            #expect(!a.events.contains { $0.event == "message_delta" || $0.event == "message_stop" })
            #expect(a.events.filter { $0.event == "content_block_delta" }.count == 3)
        }
    }

    @Test func malformedAfterSendsOneBadLineAndContinues() async throws {
        try await withMock { mock in
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIStream, mock: "malformed_after=1,tokens=3")
            #expect(o.completeBody)
            let parsed = o.jsonEvents
            // role, content, MALFORMED, content, content, finish, usage, [DONE]
            #expect(parsed.count == 8)
            #expect(parsed[2] == nil && o.events[2].data != "[DONE]")
            #expect(parsed.dropFirst(3).dropLast().allSatisfy { $0 != nil })
            #expect(o.events.last?.data == "[DONE]")
        }
    }

    @Test func errorAfterSendsAnInStreamError() async throws {
        try await withMock { mock in
            let a = try await MockClient.anthropic(port: mock.port, body: Self.anthropicStream, mock: "error_after=1")
            #expect(a.completeBody)
            #expect(a.events.last?.event == "error")
            #expect(a.jsonEvents.last??[path: "error", "type"] as? String == "overloaded_error")
            #expect(!a.events.contains { $0.event == "message_stop" })
            let o = try await MockClient.openAI(port: mock.port, body: Self.openAIStream, mock: "error_after=2")
            #expect(o.jsonEvents.last??[path: "error", "type"] as? String == "server_error")
            #expect(!o.body.contains("[DONE]"))
        }
    }

    @Test func randomFaultsAtRateOne() async throws {
        try await withMock(.init(faultRate: 1, faultStatus: 502)) { mock in
            let r = try await MockClient.openAI(port: mock.port, body: Self.openAIPlain)
            #expect(r.status == 502)
            #expect(r.json?[path: "error", "type"] as? String == "server_error")
        }
    }
}
