import Foundation
public import Logging
import SluiceMigrations
public import SluicePostgres

/// The `sluice` schema: its migrations (the files of `Migrations/`, embedded in the binary) and
/// how to apply them.
public enum SluiceSchema {
    /// The schema every Sluice object lives in.
    public static let name = "sluice"

    /// The embedded migrations: versioned and repeatable.
    public static func migrationSet() throws -> PostgresMigrationSet {
        do {
            return try PostgresMigrationSet(files: SluiceMigrationFiles.all.map { ($0.name, String(decoding: $0.bytes, as: UTF8.self)) })
        } catch {
            throw SluiceError(code: .database, message: "the embedded migrations are inconsistent: \(error.message)", underlying: error)
        }
    }

    /// The embedded versioned migrations, in version order.
    public static func migrations() throws -> [PostgresMigration] {
        try migrationSet().versioned
    }

    /// Applies pending versioned migrations, then the repeatable ones if any changed
    /// (serialised across processes by an advisory lock).
    /// - Returns: what this call applied.
    @discardableResult
    public static func migrate(_ client: PostgresClient, logger: Logger) async throws -> PostgresMigrator.Report {
        let migrator = PostgresMigrator(client: client, schema: name, logger: logger)
        return try await migrator.migrate(try migrationSet())
    }

    /// Applied and pending migrations of both kinds.
    public static func status(_ client: PostgresClient, logger: Logger) async throws -> PostgresMigrator.Status {
        let migrator = PostgresMigrator(client: client, schema: name, logger: logger)
        return try await migrator.status(try migrationSet())
    }
}
