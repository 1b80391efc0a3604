public import Foundation
public import Logging

/// Applies a ``PostgresMigrationSet`` and records what it applied. Knows nothing about jobs.
///
/// Versioned migrations are applied once each, in version order, and recorded in
/// `<schema>.<table>` (version, name, checksum, applied_at); one whose checksum changed after it
/// was applied is refused, naming the file (a released migration is never edited). Repeatable
/// migrations are recorded in `<schema>.<table>_repeatable` (name, checksum, applied_at); after
/// the versioned ones, whenever any repeatable migration is new or changed, all of them are
/// applied again in name order, in one transaction (so a function dropped by one file and used by
/// a later one is always defined again), and records of files that no longer exist are removed.
///
/// Concurrent runs (several processes starting at once) serialise on a session advisory lock
/// derived from the schema and table names: the first applies, the others then find nothing
/// pending. Each versioned migration runs in its own transaction with `search_path` set to the
/// schema (then `public`), together with the row that records it, so a failed migration leaves
/// no trace and can be fixed and run again.
public struct PostgresMigrator: Sendable {
    let client: PostgresClient
    let schema: String
    let table: String
    let logger: Logger

    /// - Parameters:
    ///   - schema: where the bookkeeping tables live (created if missing), e.g. `"sluice"`.
    ///   - table: the versioned bookkeeping table's name (default `schema_migrations`); the
    ///     repeatable one is called the same with `_repeatable` appended.
    public init(client: PostgresClient, schema: String, table: String = "schema_migrations", logger: Logger) {
        self.client = client
        self.schema = schema
        self.table = table
        self.logger = logger
    }

    /// What one ``migrate(_:)-swift.method`` call applied.
    public struct Report: Sendable, Hashable {
        /// Versioned migrations applied by this call, in version order.
        public var versioned: [PostgresMigration]
        /// Repeatable migrations applied by this call (all of them when any had changed,
        /// otherwise none), in name order.
        public var repeatable: [PostgresRepeatableMigration]
    }

    /// The state of each migration of a set in a database.
    public struct Status: Sendable {
        /// Each versioned migration with the time it was applied, or nil if pending.
        public var versioned: [(migration: PostgresMigration, appliedAt: Date?)]
        /// Each repeatable migration with the time it was last applied (nil if never) and
        /// whether the applied text is the current one (false: it will be applied again).
        public var repeatable: [(migration: PostgresRepeatableMigration, appliedAt: Date?, current: Bool)]
    }

    /// Loads the versioned `NNNN_description.sql` files of `directory`, sorted by version (see
    /// ``PostgresMigrationSet/load(directory:)``, which also loads repeatable ones).
    public static func load(directory: String) throws -> [PostgresMigration] {
        try PostgresMigrationSet.load(directory: directory).versioned
    }

    var qualifiedTable: String { quoteIdentifier(schema) + "." + quoteIdentifier(table) }
    var qualifiedRepeatableTable: String { quoteIdentifier(schema) + "." + quoteIdentifier(table + "_repeatable") }

    /// The advisory-lock key: FNV-1a of `schema.table`, as a signed 64-bit number.
    var lockKey: Int64 { Int64(bitPattern: fnv1a64(Array("sluice.migrations:\(schema).\(table)".utf8))) }

    /// Applies the pending versioned migrations (only), in version order, and returns them.
    @discardableResult
    public func migrate(_ migrations: [PostgresMigration]) async throws -> [PostgresMigration] {
        try await migrate(PostgresMigrationSet(versioned: migrations)).versioned
    }

    /// Applies the pending versioned migrations in version order, then, if any repeatable
    /// migration is new or changed, every repeatable migration in name order. Throws (code
    /// `.migration`) when an applied versioned migration's checksum changed (naming the file) or
    /// when a migration fails (with the server's SQLSTATE and fields, naming the file).
    @discardableResult
    public func migrate(_ set: PostgresMigrationSet) async throws -> Report {
        let (schema, qualifiedTable, repeatableTable, lockKey, logger) =
            (self.schema, self.qualifiedTable, self.qualifiedRepeatableTable, self.lockKey, self.logger)
        return try await client.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock($1)", [lockKey])
            do {
                try await Self.prepare(connection, schema: schema, table: qualifiedTable, repeatableTable: repeatableTable)
                let applied = try await Self.readChecksums(connection, "SELECT version::text, checksum FROM \(qualifiedTable)")
                var pending: [PostgresMigration] = []
                for migration in set.versioned {
                    if let checksum = applied[String(migration.version)] {
                        if checksum != migration.checksum {
                            throw PostgresError(
                                code: .migration,
                                message: "migration \(migration.fileName) was changed after it was applied (checksum \(migration.checksum), recorded \(checksum)); add a new migration instead of editing it")
                        }
                    } else {
                        pending.append(migration)
                    }
                }
                for migration in pending {
                    logger.info("applying migration", metadata: ["migration": "\(migration.fileName)"])
                    try await Self.applying(migration.fileName) {
                        try await connection.withTransaction { tx in
                            try await tx.execute("SET LOCAL search_path TO \(quoteIdentifier(schema)), public")
                            try await tx.execute(migration.sql)
                            _ = try await tx.query(
                                "INSERT INTO \(qualifiedTable) (version, name, checksum) VALUES ($1, $2, $3)",
                                [migration.version, migration.name, migration.checksum])
                        }
                    }
                }
                let recorded = try await Self.readChecksums(connection, "SELECT name, checksum FROM \(repeatableTable)")
                let changed = set.repeatable.contains { recorded[$0.name] != $0.checksum }
                let removed = Set(recorded.keys).subtracting(set.repeatable.map(\.name))
                let reapplied = changed ? set.repeatable : []
                if changed || !removed.isEmpty {
                    try await connection.withTransaction { tx in
                        try await tx.execute("SET LOCAL search_path TO \(quoteIdentifier(schema)), public")
                        for migration in reapplied {
                            logger.info("applying repeatable migration", metadata: ["migration": "\(migration.fileName)"])
                            try await Self.applying(migration.fileName) { try await tx.execute(migration.sql) }
                            _ = try await tx.query(
                                """
                                INSERT INTO \(repeatableTable) (name, checksum) VALUES ($1, $2)
                                ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
                                """,
                                [migration.name, migration.checksum])
                        }
                        for name in removed.sorted() {
                            _ = try await tx.query("DELETE FROM \(repeatableTable) WHERE name = $1", [name])
                        }
                    }
                }
                _ = try await connection.query("SELECT pg_advisory_unlock($1)", [lockKey])
                return Report(versioned: pending, repeatable: reapplied)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock($1)", [lockKey])
                throw error
            }
        }
    }

    /// Every given versioned migration with the time it was applied, or nil if pending.
    public func status(_ migrations: [PostgresMigration]) async throws -> [(migration: PostgresMigration, appliedAt: Date?)] {
        try await status(PostgresMigrationSet(versioned: migrations)).versioned
    }

    /// The state of every migration of `set` (versioned and repeatable) in the database.
    public func status(_ set: PostgresMigrationSet) async throws -> Status {
        let (schema, table, qualifiedTable, repeatableTable) = (self.schema, self.table, self.qualifiedTable, self.qualifiedRepeatableTable)
        return try await client.withConnection { connection in
            var versioned: [Int: Date] = [:]
            var repeatable: [String: (checksum: String, appliedAt: Date)] = [:]
            let tables = try await connection.query(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename IN ($2, $3)", [schema, table, table + "_repeatable"])
            let present = Set(try tables.map { try $0.decode(String.self, at: 0) })
            if present.contains(table) {
                for row in try await connection.query("SELECT version, applied_at FROM \(unescaped: qualifiedTable)") {
                    versioned[try row.decode(Int.self, at: 0)] = try row.decode(Date.self, at: 1)
                }
            }
            if present.contains(table + "_repeatable") {
                for row in try await connection.query("SELECT name, checksum, applied_at FROM \(unescaped: repeatableTable)") {
                    repeatable[try row.decode(String.self, at: 0)] = (try row.decode(String.self, at: 1), try row.decode(Date.self, at: 2))
                }
            }
            return Status(
                versioned: set.versioned.map { ($0, versioned[$0.version]) },
                repeatable: set.repeatable.map { ($0, repeatable[$0.name]?.appliedAt, repeatable[$0.name]?.checksum == $0.checksum) })
        }
    }

    /// Runs `body`, renaming a server error into a `.migration` error that names the file.
    static func applying(_ fileName: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch var error as PostgresError where error.code == .server {
            error.code = .migration
            error.message = "migration \(fileName) failed: " + error.message
            throw error
        }
    }

    static func prepare(_ connection: PostgresConnection, schema: String, table: String, repeatableTable: String) async throws {
        try await connection.execute("""
            CREATE SCHEMA IF NOT EXISTS \(quoteIdentifier(schema));
            CREATE TABLE IF NOT EXISTS \(table) (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE IF NOT EXISTS \(repeatableTable) (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
    }

    static func readChecksums(_ connection: PostgresConnection, _ sql: String) async throws -> [String: String] {
        var checksums: [String: String] = [:]
        for row in try await connection.query(PostgresQuery(unsafeSQL: sql)) {
            checksums[try row.decode(String.self, at: 0)] = try row.decode(String.self, at: 1)
        }
        return checksums
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
