import Foundation
import FoundationEssentials

/// A provider as validation knows it: its name, wire kind and models.
public struct RegisteredProvider: Sendable, Hashable {
    /// `openai`, `anthropic` or `echo`: decides the request shape jobs must have.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case openai, anthropic, echo
    }

    public var name: String
    public var kind: Kind
    public var models: [String]

    public init(name: String, kind: Kind, models: [String]) {
        self.name = name
        self.kind = kind
        self.models = models
    }
}

extension SluiceClient {
    /// Records providers and their models in `sluice.providers` / `sluice.models`, the registry
    /// job validation checks against (the operator's configuration and the price table feed it
    /// at `sluice migrate` and worker start). Adds and updates; never removes models that jobs
    /// may still name.
    public func register(providers: [RegisteredProvider]) async throws {
        for provider in providers {
            guard provider.name.range(of: #"^[a-z0-9][a-z0-9_.-]{0,62}$"#, options: .regularExpression) != nil else {
                throw SluiceError.invalid("providers.name", "format", "provider name \(provider.name) must match ^[a-z0-9][a-z0-9_.-]{0,62}$")
            }
            if let bad = provider.models.first(where: { $0.isEmpty || $0.count > 200 }) {
                throw SluiceError.invalid("providers.models", "length", "model name \"\(bad)\" must have 1 to 200 characters")
            }
        }
        try await store.register(providers: providers)
    }
}
