public import Sluice
import Foundation

/// The providers and models job validation accepts: configured providers with their
/// configured models, else the price table's models for that provider.
public enum ProviderCatalog {
    /// Echo always; each configured provider with its configured models (else the price
    /// table's models of its kind); OpenAI and Anthropic with the price table's models unless
    /// configured under those names.
    public static func registered(configuration: ProvidersConfiguration, prices: PriceTable) -> [RegisteredProvider] {
        var result: [RegisteredProvider] = [RegisteredProvider(name: "echo", kind: .echo, models: ["echo"])]
        var names: Set<String> = ["echo"]
        for provider in configuration.providers where !names.contains(provider.name) {
            names.insert(provider.name)
            let kind = RegisteredProvider.Kind(rawValue: provider.kind.rawValue) ?? .openai
            let models = provider.models.isEmpty ? prices.models(forProvider: provider.kind.rawValue) : provider.models
            result.append(RegisteredProvider(name: provider.name, kind: kind, models: models))
        }
        for kind in [RegisteredProvider.Kind.openai, .anthropic] where !names.contains(kind.rawValue) {
            result.append(RegisteredProvider(name: kind.rawValue, kind: kind, models: prices.models(forProvider: kind.rawValue)))
        }
        return result
    }

    /// Context windows (tokens) by `provider/model` from the bundled `Resources/models.json`.
    public static let contextWindows: [String: Int] = {
        struct File: Decodable {
            var contextWindows: [String: Int]
            enum CodingKeys: String, CodingKey { case contextWindows = "context_windows" }
        }
        return (try? JSONDecoder().decode(File.self, from: Data(PackageResources.models_json)))?.contextWindows ?? [:]
    }()

    /// The context window of `model` at a provider called `provider` of wire format `kind`:
    /// the provider's configured `context_windows` first, then the bundled table under the
    /// provider's name, then under its kind; a dated name (`gpt-4o-2024-08-06`) resolves to its
    /// base entry. Nil when unknown.
    public static func contextWindow(provider: String, kind: String, model: String, overrides: [String: Int] = [:]) -> Int? {
        let base = PriceTable.baseModelName(model)
        for name in [model, base].compactMap({ $0 }) {
            if let window = overrides[name] { return window }
        }
        for owner in [provider, kind] {
            for name in [model, base].compactMap({ $0 }) {
                if let window = contextWindows["\(owner)/\(name)"] { return window }
            }
        }
        return nil
    }
}
