public import Foundation
public import Logging
public import Sluice
import SluiceSupport

/// Model prices and the cost of a call.
///
/// Prices come from the versioned `prices.json` bundled with this module (USD per million
/// tokens), merged with overrides from configuration. Keys are `provider/model`
/// (`openai/gpt-4o-mini`). A dated model name (`gpt-4o-mini-2024-07-18`,
/// `claude-sonnet-4-5-20250929`, `claude-3-5-haiku-latest`) resolves to its base entry when it
/// has no exact one. An unknown model costs `nil` — never a guess, never a crash — and is
/// counted in ``unknownModelLookups`` and logged once per model.
public final class PriceTable: Sendable {
    /// Prices of one model, USD per million tokens.
    public struct Price: Sendable, Hashable, Codable {
        public var input: Double
        public var output: Double
        /// Cached input reads; nil means the provider does not discount them (input price).
        public var cacheRead: Double?
        /// Cache writes; nil means they are billed as plain input.
        public var cacheWrite: Double?

        public init(input: Double, output: Double, cacheRead: Double? = nil, cacheWrite: Double? = nil) {
            self.input = input
            self.output = output
            self.cacheRead = cacheRead
            self.cacheWrite = cacheWrite
        }

        enum CodingKeys: String, CodingKey {
            case input, output
            case cacheRead = "cache_read"
            case cacheWrite = "cache_write"
        }
    }

    struct File: Decodable {
        var version: String
        var currency: String
        var unit: String
        var batchDiscount: Double
        var models: [String: Price]

        enum CodingKeys: String, CodingKey {
            case version, currency, unit, models
            case batchDiscount = "batch_discount"
        }
    }

    /// The price table's version (a date), for cost audit trails.
    public let version: String
    /// The currency of all prices (`USD`).
    public let currency: String
    /// The fraction taken off batch-lane calls (0.5 = half price).
    public let batchDiscount: Double
    /// All prices by `provider/model`, overrides applied.
    public let prices: [String: Price]

    private let logger: Logger
    private let state = Locked(State())

    private struct State {
        var unknownLookups = 0
        var warned: Set<String> = []
    }

    /// Loads the price table compiled into the binary (`Resources/prices.json`, embedded by
    /// SwiftPM) and applies `overrides` (keyed `provider/model`).
    public convenience init(overrides: [String: Price] = [:], logger: Logger) throws(ProvidersError) {
        try self.init(json: Data(PackageResources.prices_json), overrides: overrides, logger: logger)
    }

    /// Parses a price table in the `prices.json` format and applies `overrides`.
    public init(json: Data, overrides: [String: Price] = [:], logger: Logger) throws(ProvidersError) {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: json)
        } catch {
            throw ProvidersError(.invalidPriceTable, "prices.json is malformed: \(error)")
        }
        guard file.unit == "per_million_tokens" else {
            throw ProvidersError(.invalidPriceTable, "unsupported price unit \(file.unit)", field: "unit")
        }
        guard (0...1).contains(file.batchDiscount) else {
            throw ProvidersError(.invalidPriceTable, "must be between 0 and 1", field: "batch_discount")
        }
        self.version = file.version
        self.currency = file.currency
        self.batchDiscount = file.batchDiscount
        self.prices = file.models.merging(overrides) { _, override in override }
        self.logger = logger
    }

    /// How many cost lookups found no price (each one is a call whose cost is unknown).
    public var unknownModelLookups: Int { state.withLock { $0.unknownLookups } }

    /// The models priced for `provider` (the part after `provider/`), sorted.
    public func models(forProvider provider: String) -> [String] {
        let prefix = provider + "/"
        return prices.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.sorted()
    }

    /// The price of `provider/model`, resolving dated names to their base entry. Does not
    /// count unknown lookups.
    public func price(provider: String, model: String) -> Price? {
        if let price = prices["\(provider)/\(model)"] { return price }
        if let base = Self.baseModelName(model), let price = prices["\(provider)/\(base)"] { return price }
        return nil
    }

    /// The USD cost of `usage` on `provider/model`, or nil (counted and logged once per model)
    /// when the model has no price.
    ///
    /// cost = (input·p_in + output·p_out + cacheRead·p_cacheRead + cacheWrite·p_cacheWrite) / 10⁶,
    /// times `1 − batchDiscount` for batch calls. `usage` is the normalised ``Usage``
    /// (`inputTokens` excludes cached tokens).
    public func cost(provider: String, model: String, usage: Usage, batch: Bool = false) -> Double? {
        cost(providers: [provider], model: model, usage: usage, batch: batch)
    }

    /// Like ``cost(provider:model:usage:batch:)``, trying each provider name in turn (a
    /// configured provider's own name, then its kind), counting one unknown lookup at most.
    public func cost(providers: [String], model: String, usage: Usage, batch: Bool = false) -> Double? {
        for provider in providers {
            if let price = price(provider: provider, model: model) {
                return Self.cost(of: usage, at: price, multiplier: batch ? 1 - batchDiscount : 1)
            }
        }
        let key = "\(providers.first ?? "")/\(model)"
        let firstTime = state.withLock { state -> Bool in
            state.unknownLookups += 1
            return state.warned.insert(key).inserted
        }
        if firstTime {
            logger.warning("no price for model; its calls have no cost", metadata: ["model": "\(key)", "price_table": "\(version)"])
        }
        return nil
    }

    static func cost(of usage: Usage, at price: Price, multiplier: Double) -> Double {
        let micro = Double(usage.inputTokens) * price.input
            + Double(usage.outputTokens) * price.output
            + Double(usage.cacheReadTokens) * (price.cacheRead ?? price.input)
            + Double(usage.cacheWriteTokens) * (price.cacheWrite ?? price.input)
        return micro / 1_000_000 * multiplier
    }

    /// The base name of a dated or aliased model name: strips `-YYYYMMDD`, `-YYYY-MM-DD` and
    /// `-latest`; nil when there is nothing to strip.
    static func baseModelName(_ model: String) -> String? {
        let utf8 = Array(model.utf8)
        func isDigits(_ slice: ArraySlice<UInt8>) -> Bool { !slice.isEmpty && slice.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        if model.hasSuffix("-latest") { return String(model.dropLast("-latest".count)) }
        let n = utf8.count
        if n > 9, utf8[n - 9] == UInt8(ascii: "-"), isDigits(utf8[(n - 8)...]) {
            return String(decoding: utf8[..<(n - 9)], as: UTF8.self)
        }
        if n > 11, utf8[n - 11] == UInt8(ascii: "-"), isDigits(utf8[(n - 10)..<(n - 6)]),
           utf8[n - 6] == UInt8(ascii: "-"), isDigits(utf8[(n - 5)..<(n - 3)]),
           utf8[n - 3] == UInt8(ascii: "-"), isDigits(utf8[(n - 2)...]) {
            return String(decoding: utf8[..<(n - 11)], as: UTF8.self)
        }
        return nil
    }
}
