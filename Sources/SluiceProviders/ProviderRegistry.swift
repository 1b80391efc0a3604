public import Logging
public import Sluice
public import SluiceHTTP

/// The providers of a process, by name, built once from configuration.
///
/// The worker looks providers up by the job's `provider` field; the lead's job validation is
/// seeded from ``knownModels``.
public struct ProviderRegistry: Sendable {
    private let providers: [String: any LLMProvider]
    /// Provider name → the models it accepts: configured models, else the price table's models
    /// of the provider's name or kind; `echo` → `["echo"]`.
    public let knownModels: [String: [String]]
    /// The price table every provider prices its calls with.
    public let priceTable: PriceTable
    /// The configuration the registry was built from.
    public let configuration: ProvidersConfiguration

    /// - Parameters:
    ///   - configuration: the providers to build.
    ///   - httpClient: the process's shared HTTP client (a running `Service`).
    ///   - priceTable: prices for `costUSD` (load it with the configuration's `priceOverrides`).
    ///   - logger: passed to the providers.
    public init(configuration: ProvidersConfiguration, httpClient: HTTPClient, priceTable: PriceTable, logger: Logger) {
        var providers: [String: any LLMProvider] = [:]
        var models: [String: [String]] = [:]
        for entry in configuration.providers {
            switch entry.kind {
            case .openai:
                providers[entry.name] = OpenAIProvider(configuration: entry, httpClient: httpClient, priceTable: priceTable, logger: logger)
            case .anthropic:
                providers[entry.name] = AnthropicProvider(configuration: entry, httpClient: httpClient, priceTable: priceTable, logger: logger)
            case .echo:
                providers[entry.name] = EchoProvider(name: entry.name, priceTable: priceTable)
            }
            if !entry.models.isEmpty {
                models[entry.name] = entry.models
            } else if entry.kind == .echo {
                models[entry.name] = ["echo"]
            } else {
                let own = priceTable.models(forProvider: entry.name)
                models[entry.name] = own.isEmpty ? priceTable.models(forProvider: entry.kind.rawValue) : own
            }
        }
        self.providers = providers
        self.knownModels = models
        self.priceTable = priceTable
        self.configuration = configuration
    }

    /// The provider called `name`, nil when none is configured.
    public func provider(named name: String) -> (any LLMProvider)? {
        providers[name]
    }

    /// The names of all providers, sorted.
    public var names: [String] { providers.keys.sorted() }
}
