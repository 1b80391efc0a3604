import Foundation
import Logging
import Sluice
import Testing
@testable import SluiceProviders

@Suite("Price table and cost")
struct PriceTableTests {
    let logger = Logger(label: "test.prices")

    @Test func bundledTableLoads() throws {
        let table = try PriceTable(logger: logger)
        #expect(table.version == "2026-11-01")
        #expect(table.currency == "USD")
        #expect(table.batchDiscount == 0.5)
        #expect(table.price(provider: "openai", model: "gpt-4o-mini") == PriceTable.Price(input: 0.15, output: 0.60, cacheRead: 0.075, cacheWrite: nil))
        #expect(table.price(provider: "echo", model: "echo")?.input == 0)
        for model in ["gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5", "gpt-5-mini"] {
            #expect(table.price(provider: "openai", model: model) != nil, "\(model)")
        }
        // Anthropic cache prices follow 1.25× / 0.1× of input.
        for model in ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku"] {
            let price = try #require(table.price(provider: "anthropic", model: model), "\(model)")
            #expect(abs(price.cacheWrite! - price.input * 1.25) < 1e-9)
            #expect(abs(price.cacheRead! - price.input * 0.1) < 1e-9)
        }
    }

    @Test func costFormula() throws {
        let table = try PriceTable(logger: logger)
        // gpt-4o-mini: 1000 uncached input, 500 output, 2000 cached → (1000·0.15 + 500·0.6 + 2000·0.075)/1e6
        let usage = Usage(inputTokens: 1000, outputTokens: 500, cacheReadTokens: 2000)
        let cost = try #require(table.cost(provider: "openai", model: "gpt-4o-mini", usage: usage))
        #expect(abs(cost - 0.0006) < 1e-12)
        let batch = try #require(table.cost(provider: "openai", model: "gpt-4o-mini", usage: usage, batch: true))
        #expect(abs(batch - 0.0003) < 1e-12)
        // claude-sonnet-4-5 with cache writes: 100·3 + 50·15 + 1000·0.3 + 400·3.75 = 2850 → 0.00285
        let anthropic = try #require(table.cost(provider: "anthropic", model: "claude-sonnet-4-5", usage: Usage(inputTokens: 100, outputTokens: 50, cacheReadTokens: 1000, cacheWriteTokens: 400)))
        #expect(abs(anthropic - 0.00285) < 1e-12)
    }

    @Test(arguments: [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
    ])
    func datedNamesResolveToBase(_ provider: String, _ dated: String, _ base: String) throws {
        let table = try PriceTable(logger: logger)
        #expect(table.price(provider: provider, model: dated) == table.price(provider: provider, model: base))
        #expect(table.price(provider: provider, model: dated) != nil)
    }

    @Test func unknownModelIsNilAndCounted() throws {
        let table = try PriceTable(logger: logger)
        #expect(table.unknownModelLookups == 0)
        #expect(table.cost(provider: "openai", model: "gpt-99-turbo", usage: Usage(inputTokens: 10)) == nil)
        #expect(table.cost(provider: "openai", model: "gpt-99-turbo", usage: Usage(inputTokens: 10)) == nil)
        #expect(table.cost(provider: "nobody", model: "x", usage: .zero) == nil)
        #expect(table.unknownModelLookups == 3)
        // A near name is not a match.
        #expect(table.price(provider: "openai", model: "gpt-4o-mini-search-preview") == nil)
    }

    @Test func overridesWin() throws {
        let table = try PriceTable(overrides: [
            "openai/gpt-4o-mini": .init(input: 1, output: 2),
            "openai/my-fine-tune": .init(input: 3, output: 4, cacheRead: 1),
        ], logger: logger)
        #expect(table.cost(provider: "openai", model: "gpt-4o-mini", usage: Usage(inputTokens: 1_000_000)) == 1)
        #expect(table.cost(provider: "openai", model: "my-fine-tune", usage: Usage(outputTokens: 1_000_000, cacheReadTokens: 1_000_000)) == 5)
        // No cache-read price → cached tokens billed at the input price.
        #expect(table.cost(provider: "openai", model: "gpt-4o-mini", usage: Usage(cacheReadTokens: 1_000_000)) == 1)
        #expect(table.models(forProvider: "openai").contains("my-fine-tune"))
    }

    @Test func malformedTableIsAnError() {
        #expect(throws: ProvidersError.self) {
            _ = try PriceTable(json: Data("{}".utf8), logger: logger)
        }
        #expect(throws: ProvidersError.self) {
            _ = try PriceTable(json: Data(#"{"version":"x","currency":"USD","unit":"per_token","batch_discount":0.5,"models":{}}"#.utf8), logger: logger)
        }
    }
}
