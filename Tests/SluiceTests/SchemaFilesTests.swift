import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

@Suite struct SchemaFilesTests {
    static let migrationsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Migrations")

    /// The binary carries exactly the .sql files of Migrations/ (a new file must be listed in
    /// Migrations/SluiceMigrations.swift).
    @Test func everyMigrationFileIsEmbedded() throws {
        let fromDisk = try PostgresMigrationSet.load(directory: Self.migrationsDirectory.path)
        let embedded = try SluiceSchema.migrationSet()
        #expect(embedded.versioned.map(\.fileName) == fromDisk.versioned.map(\.fileName))
        #expect(embedded.repeatable.map(\.fileName) == fromDisk.repeatable.map(\.fileName))
        #expect(embedded == fromDisk, "an embedded migration differs from its file")
        #expect(embedded.versioned.count >= 3 && embedded.repeatable.count >= 7)
    }

    /// Released versioned migrations are never edited: a database migrated with them must keep
    /// upgrading (the migrator refuses a changed checksum). These are the first release's.
    @Test func releasedMigrationsAreUnchanged() throws {
        let released: [Int: String] = [1: "af0a32410fa492b0", 2: "d2e40ab66ac8c066", 3: "058c867270f1a90b"]
        let versioned = try SluiceSchema.migrations()
        for (version, checksum) in released {
            let migration = try #require(versioned.first { $0.version == version })
            #expect(migration.checksum == checksum, "\(migration.fileName) was edited after release: add a new migration instead")
        }
    }

    /// Every function and view of schema sluice is (re)defined by a repeatable file, so the
    /// repeatable files are the one place to read and change them.
    @Test(.migratedDatabase()) func everyFunctionAndViewLivesInARepeatableFile() async throws {
        let db = try MigratedDatabase.current
        let rows = try await db.postgres.query("""
            SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'sluice'::regnamespace
            UNION SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'v'
            """)
        let inDatabase = Set(try rows.map { try $0.decode(String.self, at: 0) })
        var inRepeatables: Set<String> = []
        let pattern = try Regex(#"CREATE OR REPLACE (?:FUNCTION|VIEW) sluice\.(\w+)"#)
        for file in try SluiceSchema.migrationSet().repeatable {
            for match in file.sql.matches(of: pattern) {
                if let name = match.output[1].substring { inRepeatables.insert(String(name)) }
            }
        }
        #expect(inDatabase.count > 30)
        #expect(inDatabase.subtracting(inRepeatables).isEmpty, "not in a repeatable file: \(inDatabase.subtracting(inRepeatables).sorted())")
        #expect(inRepeatables.subtracting(inDatabase).isEmpty)
        let recorded = try await db.count("SELECT count(*) FROM sluice.schema_migrations_repeatable")
        #expect(recorded == (try SluiceSchema.migrationSet().repeatable.count))
    }
}
