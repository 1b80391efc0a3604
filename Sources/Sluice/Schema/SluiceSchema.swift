import Logging
import SluicePostgres

/// The `sluice` schema: its migrations (embedded from `Migrations/`) and how to apply them.
public enum SluiceSchema {
    /// The schema every Sluice object lives in.
    public static let name = "sluice"

    /// The embedded migrations, parsed.
    public static func migrations() throws -> [PostgresMigration] {
        try embedded.map { entry in
            guard let version = Int(entry.file.prefix(4)), entry.file.dropFirst(4).first == "_" else {
                throw SluiceError(code: .database, message: "embedded migration \(entry.file) is not named NNNN_description.sql")
            }
            let name = String(entry.file.dropFirst(5).dropLast(4))
            return PostgresMigration(version: version, name: name, sql: entry.sql)
        }
    }

    /// Applies pending migrations (serialised across processes by an advisory lock).
    /// - Returns: the migrations applied by this call.
    @discardableResult
    public static func migrate(_ client: PostgresClient, logger: Logger) async throws -> [PostgresMigration] {
        let migrator = PostgresMigrator(client: client, schema: name, logger: logger)
        return try await migrator.migrate(try migrations())
    }

    /// Applied and pending migrations.
    public static func status(_ client: PostgresClient, logger: Logger) async throws -> [(migration: PostgresMigration, appliedAt: Date?)] {
        let migrator = PostgresMigrator(client: client, schema: name, logger: logger)
        return try await migrator.status(try migrations())
    }
}

import Foundation
