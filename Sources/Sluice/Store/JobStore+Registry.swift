import SluicePostgres

extension JobStore {
    /// Registers providers and their models (what validation accepts), in one transaction:
    /// new providers are added, a provider's kind is updated, models are only ever added.
    public func register(providers: [RegisteredProvider]) async throws(SluiceError) {
        try await run("registerProviders") {
            try await postgres.withTransaction { connection in
                for provider in providers {
                    _ = try await connection.query("""
                        INSERT INTO sluice.providers (name, kind) VALUES (\(provider.name), \(provider.kind.rawValue))
                        ON CONFLICT (name) DO UPDATE SET kind = excluded.kind
                        """)
                    _ = try await connection.query("""
                        INSERT INTO sluice.models (provider, model) SELECT \(provider.name), unnest(\(provider.models)::text[])
                        ON CONFLICT DO NOTHING
                        """)
                }
            }
        }
    }
}

extension JobStore {
    /// Registered providers and their models (`sluice.providers`, `sluice.models`): what jobs
    /// may name.
    public func registeredModels() async throws(SluiceError) -> [String: Set<String>] {
        try await run("registeredModels") {
            let result = try await postgres.query(
                "SELECT p.name, m.model FROM sluice.providers p LEFT JOIN sluice.models m ON m.provider = p.name", [])
            var known: [String: Set<String>] = [:]
            for row in result.rows {
                let name = try row.decode(String.self, column: "name")
                known[name, default: []].formUnion([try row.decode(String?.self, column: "model")].compactMap { $0 })
            }
            return known
        }
    }
}
