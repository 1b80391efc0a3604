import Foundation
import SluiceMockProvider
import SluiceSupport
import Testing

@Suite("Mock rate limits, auth and admin")
struct MockRateLimitAndAdminTests {
    static let openAI = "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}"
    static let anthropic = "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}"

    @Test func requestLimitGives429WithHeadersAndResetsNextWindow() async throws {
        // A 4 s window: the three requests must land in one window even on a loaded machine.
        try await withMock(.init(rpm: 2, rateLimitWindow: .seconds(4))) { mock in
            let first = try await MockClient.openAI(port: mock.port, body: Self.openAI)
            #expect(first.headers["x-ratelimit-limit-requests"] == "2")
            #expect(first.headers["x-ratelimit-remaining-requests"] == "1")
            _ = try await MockClient.openAI(port: mock.port, body: Self.openAI)
            let limited = try await MockClient.openAI(port: mock.port, body: Self.openAI)
            #expect(limited.status == 429)
            #expect(limited.json?[path: "error", "code"] as? String == "rate_limit_exceeded")
            #expect(limited.headers["x-ratelimit-remaining-requests"] == "0")
            let retryMs = try #require(limited.headers["retry-after-ms"].flatMap(Int.init))
            #expect(retryMs > 0 && retryMs <= 4000)
            #expect(limited.headers["retry-after"] == String((retryMs + 999) / 1000))
            #expect(limited.headers["x-ratelimit-reset-requests"]?.hasSuffix("s") == true)  // Go duration: "850ms", "3.2s"
            // Another key has its own window.
            #expect(try await MockClient.openAI(port: mock.port, body: Self.openAI, key: "other").status == 200)
            try await Task.sleep(for: .milliseconds(retryMs + 50))
            #expect(try await MockClient.openAI(port: mock.port, body: Self.openAI).status == 200)
            #expect(mock.stats.rateLimited == 1)
        }
    }

    @Test func tokenLimitCountsInputPlusMaxTokens() async throws {
        // cost = ceil(4/4) + 10 = 11 per request; 25 tokens admit two.
        try await withMock(.init(tpm: 25)) { mock in
            let a1 = try await MockClient.anthropic(port: mock.port, body: Self.anthropic)
            #expect(a1.status == 200)
            #expect(a1.headers["anthropic-ratelimit-tokens-limit"] == "25")
            #expect(a1.headers["anthropic-ratelimit-tokens-remaining"] == "14")
            #expect(try await MockClient.anthropic(port: mock.port, body: Self.anthropic).status == 200)
            let limited = try await MockClient.anthropic(port: mock.port, body: Self.anthropic)
            #expect(limited.status == 429)
            #expect(limited.json?[path: "error", "type"] as? String == "rate_limit_error")
            #expect(limited.headers["retry-after"] != nil)
            #expect(limited.headers["anthropic-ratelimit-tokens-remaining"] == "3")
        }
    }

    @Test func apiKeysAreChecked() async throws {
        try await withMock(.init(apiKeys: [Redacted("good")])) { mock in
            #expect(try await MockClient.openAI(port: mock.port, body: Self.openAI, key: "good").status == 200)
            let bad = try await MockClient.openAI(port: mock.port, body: Self.openAI, key: "bad")
            #expect(bad.status == 401)
            #expect(bad.json?[path: "error", "code"] as? String == "invalid_api_key")
            let anthropic = try await MockClient.anthropic(port: mock.port, body: Self.anthropic, key: "bad")
            #expect(anthropic.status == 401)
            #expect(anthropic.json?[path: "error", "type"] as? String == "authentication_error")
            let missing = try await MockClient.send(port: mock.port, path: "/v1/chat/completions", body: Self.openAI)
            #expect(missing.status == 401)
        }
    }

    @Test func adminStatsResetAndHealth() async throws {
        try await withMock { mock in
            #expect(try await MockClient.send(port: mock.port, method: "GET", path: "/health").status == 200)
            _ = try await MockClient.openAI(port: mock.port, body: "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"abcdefgh [[mock: tokens=5]]\"}]}")
            _ = try await MockClient.openAI(port: mock.port, body: Self.openAI, mock: "status=503")
            let stats = try await MockClient.send(port: mock.port, method: "GET", path: "/admin/stats")
            let json = try #require(stats.json)
            #expect(json["requests_total"] as? Int == 2)
            #expect(json[path: "requests_by_status", "200"] as? Int == 1)
            #expect(json[path: "requests_by_status", "503"] as? Int == 1)
            #expect(json["tokens_served"] as? Int == 5)
            #expect(json["input_tokens"] as? Int == MockProviderOutput.inputTokens(characterCount: "abcdefgh [[mock: tokens=5]]".count))
            #expect(json["active_streams"] as? Int == 0)
            #expect(json["peak_concurrent_streams"] as? Int == 1)
            #expect(json["rate_limited"] as? Int == 0)
            #expect(try await MockClient.send(port: mock.port, method: "POST", path: "/admin/reset").status == 200)
            #expect(mock.stats == MockProviderStats())
        }
    }
}
