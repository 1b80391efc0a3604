import SluiceMockProvider
import Testing

@Suite("Mock output and usage rules")
struct MockOutputTests {
    @Test func textCyclesThePromptWords() {
        #expect(MockProviderOutput.text(forPrompt: "say hi", tokens: 5) == "say hi say hi say")
        #expect(MockProviderOutput.tokens(forPrompt: "say hi", tokens: 3) == ["say", " hi", " say"])
        #expect(MockProviderOutput.text(forPrompt: "  \n ", tokens: 2) == "mock mock")
        #expect(MockProviderOutput.text(forPrompt: "x", tokens: 0) == "")
    }

    @Test func inlineDirectivesAreRemovedFromTheOutputButCountedInInput() {
        let prompt = "alpha [[mock: tokens=3,ttft_ms=5]] beta"
        #expect(MockProviderOutput.text(forPrompt: prompt, tokens: 3) == "alpha beta alpha")
        #expect(MockProviderOutput.inputTokens(texts: [prompt]) == (prompt.count + 3) / 4)
    }

    @Test func inputTokensAreCeilingOfCharactersOverFour() {
        #expect(MockProviderOutput.inputTokens(texts: []) == 0)
        #expect(MockProviderOutput.inputTokens(texts: ["abcd"]) == 1)
        #expect(MockProviderOutput.inputTokens(texts: ["abcd", "e"]) == 2)
        #expect(MockProviderOutput.inputTokens(characterCount: 9) == 3)
    }

    @Test func directivesParseAndRejectUnknownKeys() throws {
        let d = try MockDirectives.parse(header: "status=503, fail_times=2", prompt: "hi [[mock: tokens=4,status=500]]")
        #expect(d.status == 503)
        #expect(d.tokens == 4)
        #expect(d.failTimes == 2)
        #expect(d.hasFailure)
        #expect(!d.withoutFailures.hasFailure)
        #expect(throws: MockProviderError.self) { try MockDirectives.parse(header: "tokns=4", prompt: "") }
        #expect(throws: MockProviderError.self) { try MockDirectives.parse(header: "tokens=-1", prompt: "") }
    }

    @Test func goDurationsLookLikeGo() {
        #expect(MockDurationFormat.goDuration(.seconds(360)) == "6m0s")
        #expect(MockDurationFormat.goDuration(.milliseconds(1500)) == "1.5s")
        #expect(MockDurationFormat.goDuration(.milliseconds(12)) == "12ms")
        #expect(MockDurationFormat.goDuration(.zero) == "0s")
        #expect(MockDurationFormat.goDuration(.seconds(3723)) == "1h2m3s")
    }
}
