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
