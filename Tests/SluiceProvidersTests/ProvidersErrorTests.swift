import Logging
import SluiceMockProvider
import SluiceSupport
import Testing

@testable import SluiceProviders

/// The error pattern (docs/ARCHITECTURE.md, "Errors") for the providers layer's own errors,
/// the SSE parser's and the mock provider's: codes compare by value, `description` is redacted,
/// `debugDescription` carries the detail.
@Suite("ProvidersError, SSEParserError, MockProviderError")
struct ProvidersErrorTests {
    @Test func providersErrorCodesCompareByValue() {
        let error = #expect(throws: ProvidersError.self) {
            _ = try ProvidersConfiguration.parse(yaml: "providers: [{name: a, kind: openai, base_url: 'ftp://x'}]")
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.code != .unreadableConfiguration)
        #expect(Set([ProvidersError.Code.invalidPriceTable, .invalidPriceTable, .invalidConfiguration]).count == 2)
        #expect(error?.field == "providers[0].base_url")
        #expect(error.map(String.init(reflecting:))
            == #"ProvidersError(code: invalid_configuration, message: "must be an http(s) URL", field: "providers[0].base_url")"#)
    }

    @Test func aYAMLSyntaxErrorDoesNotQuoteTheLineWithTheKey() {
        let key = "sk-live-AbCdEf0123456789"
        let error = #expect(throws: ProvidersError.self) {
            _ = try ProvidersConfiguration.parse(yaml: "providers:\n  - {name: a, kind: openai, api_keys: [\(key), oops\n")
        }
        #expect(error?.code == .unreadableConfiguration)
        let description = error.map(String.init(describing:)) ?? ""
        let debug = error.map(String.init(reflecting:)) ?? ""
        // Where and what, from Yams (e.g. "3:1: while parsing a flow sequence at 2:39, did not find expected ',' or ']'").
        #expect(description.hasPrefix("ProvidersError.unreadable_configuration: not valid YAML/JSON: 3:1: "), "\(description)")
        #expect(description.contains("expected"))
        #expect(debug.contains("not valid YAML/JSON: 3:1: "))
        for text in [description, debug] {
            #expect(!text.contains("AbCdEf0123456789"), "\(text)")
        }
    }

    @Test func sseParserErrorNeverQuotesTheStream() {
        var parser = SSEParser(configuration: .init(maxEventBytes: 64))
        let error = #expect(throws: SSEParserError.self) {
            _ = try parser.feed("data: " + String(repeating: "stream-Secret ", count: 10) + "\n\n")
        }
        #expect(error?.code == .eventTooLarge)
        #expect(Set([SSEParserError.Code.eventTooLarge, .eventTooLarge]).count == 1)
        #expect(error?.description == "SSEParserError.eventTooLarge: server-sent event exceeds the limit of 64 bytes")
        let debug = error.map(String.init(reflecting:)) ?? ""
        #expect(debug.hasPrefix("SSEParserError(code: eventTooLarge, maxEventBytes: 64, bufferedBytes: "))
        #expect(!debug.contains("stream-Secret"))
        #expect(!(error?.description.contains("stream-Secret") ?? true))
    }

    @Test func mockProviderErrorCodesCompareByValue() throws {
        var directives = MockDirectives()
        let error = #expect(throws: MockProviderError.self) { try directives.apply("status=teapot") }
        #expect(error?.code == .invalidDirective)
        #expect(error?.code != .invalidRequest)
        #expect(error?.description == "MockProviderError.invalid_directive: mock directive 'status' needs a non-negative integer, got 'teapot'")
        #expect(error.map(String.init(reflecting:))?.hasPrefix(#"MockProviderError(code: invalid_directive, message: "mock directive"#) == true)
    }

    @Test func mockStartFailureKeepsTheAPIKeyOutAndTheCauseInDebugDescription() async throws {
        var logger = Logger(label: "mock-error-test")
        logger.logLevel = .critical
        let key = "sk-mock-Secret-0123456789"
        let first = try await MockProviderServer.start(configuration: .init(port: 0, apiKeys: [Redacted(key)]), logger: logger)
        let error = await #expect(throws: MockProviderError.self) {
            _ = try await MockProviderServer.start(configuration: .init(port: first.port, apiKeys: [Redacted(key)]), logger: logger)
        }
        await first.stop()
        let thrown = try #require(error)
        #expect(thrown.code == .startFailed)
        #expect(thrown.underlying != nil)
        #expect(String(reflecting: thrown).contains("underlying: "))
        #expect(!String(describing: thrown).contains(key))
        #expect(!String(reflecting: thrown).contains(key))
    }
}
