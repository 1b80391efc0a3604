import Foundation
import Logging

/// Applies ``PostgresMigration``s in version order and records them in
/// `<schema>.<table>` (version, name, checksum, applied_at). Knows nothing about jobs.
///
/// Concurrent runs (several processes starting at once) serialise on a session advisory lock
/// derived from the schema and table names: the first applies, the others then find nothing
/// pending. Each migration runs in its own transaction with `search_path` set to the schema
/// (then `public`), together with the row that records it, so a failed migration leaves no
/// trace and can be fixed and re-run.
public struct PostgresMigrator: Sendable {
    let client: PostgresClient
    let schema: String
    let table: String
    let logger: Logger

    /// - Parameters:
    ///   - schema: where the bookkeeping table lives (created if missing), e.g. `"sluice"`.
    ///   - table: the bookkeeping table's name. Default `schema_migrations`.
    public init(client: PostgresClient, schema: String, table: String = "schema_migrations", logger: Logger) {
        self.client = client
        self.schema = schema
        self.table = table
        self.logger = logger
    }

    /// Loads `NNNN_description.sql` files from `directory`, sorted by version. Other file
    /// types are ignored; a `.sql` file with another name, or two files with the same
    /// version, is an error (code `.migration`) naming the file(s).
    public static func load(directory: String) throws -> [PostgresMigration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(code: .migration, message: "cannot read the migrations directory \(directory): \(error.localizedDescription)")
        }
        var byVersion: [Int: (file: String, migration: PostgresMigration)] = [:]
        for file in names.sorted() where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"),
                case let digits = stem[..<underscore], !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit),
                let version = Int(digits),
                case let name = String(stem[stem.index(after: underscore)...]), !name.isEmpty,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else {
                throw PostgresError(
                    code: .migration,
                    message: "bad migration file name '\(file)' in \(directory): expected NNNN_description.sql (digits, underscore, letters/digits/_/-)")
            }
            if let existing = byVersion[version] {
                throw PostgresError(
                    code: .migration, message: "duplicate migration version \(version): '\(existing.file)' and '\(file)' in \(directory)")
            }
            let path = (directory as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
                throw PostgresError(code: .migration, message: "cannot read migration file \(path) as UTF-8")
            }
            byVersion[version] = (file, PostgresMigration(version: version, name: name, sql: sql))
        }
        return byVersion.values.map(\.migration).sorted { $0.version < $1.version }
    }

    var qualifiedTable: String { quoteIdentifier(schema) + "." + quoteIdentifier(table) }

    /// The advisory-lock key: FNV-1a of `schema.table`, as a signed 64-bit number.
    var lockKey: Int64 { Int64(bitPattern: fnv1a64(Array("sluice.migrations:\(schema).\(table)".utf8))) }

    /// Applies the pending migrations in version order and returns them. Throws (code
    /// `.migration`) when versions repeat, when an applied migration's checksum changed
    /// (naming the file), or when a migration fails (with the server's SQLSTATE and fields).
    @discardableResult
    public func migrate(_ migrations: [PostgresMigration]) async throws -> [PostgresMigration] {
        let sorted = try Self.validated(migrations)
        let (schema, qualifiedTable, lockKey, logger) = (self.schema, self.qualifiedTable, self.lockKey, self.logger)
        return try await client.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock($1)", [lockKey])
            do {
                let applied = try await Self.prepareAndReadApplied(connection, schema: schema, table: qualifiedTable)
                var pending: [PostgresMigration] = []
                for migration in sorted {
                    if let checksum = applied[migration.version] {
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
                    do {
                        try await connection.withTransaction { tx in
                            try await tx.execute("SET LOCAL search_path TO \(quoteIdentifier(schema)), public")
                            try await tx.execute(migration.sql)
                            _ = try await tx.query(
                                "INSERT INTO \(qualifiedTable) (version, name, checksum) VALUES ($1, $2, $3)",
                                [migration.version, migration.name, migration.checksum])
                        }
                    } catch var error as PostgresError where error.code == .server {
                        error.code = .migration
                        error.message = "migration \(migration.fileName) failed: " + error.message
                        throw error
                    }
                }
                _ = try await connection.query("SELECT pg_advisory_unlock($1)", [lockKey])
                return pending
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock($1)", [lockKey])
                throw error
            }
        }
    }

    /// Every given migration with the time it was applied, or nil if pending.
    public func status(_ migrations: [PostgresMigration]) async throws -> [(migration: PostgresMigration, appliedAt: Date?)] {
        let sorted = try Self.validated(migrations)
        let (schema, table, qualifiedTable) = (self.schema, self.table, self.qualifiedTable)
        let applied: [Int: Date] = try await client.withConnection { connection in
            let exists = try await connection.query(
                "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2", [schema, table])
            guard !exists.rows.isEmpty else { return [:] }
            var applied: [Int: Date] = [:]
            for row in try await connection.query("SELECT version, applied_at FROM \(qualifiedTable)") {
                applied[try row.decode(Int.self, at: 0)] = try row.decode(Date.self, at: 1)
            }
            return applied
        }
        return sorted.map { ($0, applied[$0.version]) }
    }

    static func validated(_ migrations: [PostgresMigration]) throws(PostgresError) -> [PostgresMigration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
            throw PostgresError(code: .migration, message: "duplicate migration version \(a.version): \(a.fileName) and \(b.fileName)")
        }
        return sorted
    }

    static func prepareAndReadApplied(_ connection: PostgresConnection, schema: String, table: String) async throws -> [Int: String] {
        try await connection.execute("""
            CREATE SCHEMA IF NOT EXISTS \(quoteIdentifier(schema));
            CREATE TABLE IF NOT EXISTS \(table) (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        var applied: [Int: String] = [:]
        for row in try await connection.query("SELECT version, checksum FROM \(table)") {
            applied[try row.decode(Int.self, at: 0)] = try row.decode(String.self, at: 1)
        }
        return applied
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
