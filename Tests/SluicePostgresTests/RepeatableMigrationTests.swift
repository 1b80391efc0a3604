import Foundation
import SluicePostgresTestSupport
import Testing

@testable import SluicePostgres

@Suite(.temporaryDatabase(sharedBySuite: true)) struct RepeatableMigrationTests {
    @Test func fileNamesSortIntoVersionedAndRepeatable() throws {
        let set = try PostgresMigrationSet(files: [
            ("R20_views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;"),
            ("0002_more.sql", "SELECT 2;"),
            ("R10_functions.sql", "SELECT 3;"),
            ("0001_first.sql", "SELECT 1;"),
            ("notes.txt", "ignored"),
        ])
        #expect(set.versioned.map(\.fileName) == ["0001_first.sql", "0002_more.sql"])
        #expect(set.repeatable.map(\.fileName) == ["R10_functions.sql", "R20_views.sql"])
        #expect(set.repeatable[0].checksum == PostgresRepeatableMigration(name: "R10_functions", sql: "SELECT 3;").checksum)
        #expect(set.repeatable[0].checksum != set.repeatable[1].checksum)

        for bad in ["R.sql", "R10 views.sql", "X1_a.sql", "0001_.sql"] {
            let error = #expect(throws: PostgresError.self) { try PostgresMigrationSet(files: [(bad, "SELECT 1;")]) }
            #expect(error?.code == .migration)
            #expect(error?.message.contains(bad) == true, "\(bad)")
        }
        let duplicate = #expect(throws: PostgresError.self) {
            try PostgresMigrationSet(versioned: [], repeatable: [.init(name: "R1", sql: "a"), .init(name: "R1", sql: "b")])
        }
        #expect(duplicate?.message.contains("R1.sql") == true)
    }

    /// Versioned first, then every repeatable file in name order whenever one changed; nothing
    /// when none changed; a failing repeatable file rolls back all of them and names itself.
    @Test func repeatablesRunAfterVersionedAndAgainWhenOneChanges() async throws {
        let client = try TestDatabase.client()
        let schema = TestDatabase.uniqueName("rep")
        let migrator = PostgresMigrator(client: client, schema: schema, logger: TestDatabase.logger)
        let versioned = [PostgresMigration(version: 1, name: "items", sql: "CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2);")]
        // R20 uses the function R10 defines, so the order matters.
        let r10 = PostgresRepeatableMigration(name: "R10_count", sql: "CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql SET search_path FROM CURRENT AS $$ SELECT count(*) FROM items $$;")
        let r20 = PostgresRepeatableMigration(name: "R20_view", sql: "CREATE OR REPLACE VIEW item_stats AS SELECT item_count() AS n;")
        let first = try await migrator.migrate(PostgresMigrationSet(versioned: versioned, repeatable: [r20, r10]))
        #expect(first.versioned.map(\.version) == [1])
        #expect(first.repeatable.map(\.name) == ["R10_count", "R20_view"])
        #expect(try await client.query("SELECT n FROM \(unescaped: schema).item_stats").first?.decode(Int.self, at: 0) == 2)

        let again = try await migrator.migrate(PostgresMigrationSet(versioned: versioned, repeatable: [r10, r20]))
        #expect(again.versioned.isEmpty && again.repeatable.isEmpty)
        var status = try await migrator.status(PostgresMigrationSet(versioned: versioned, repeatable: [r10, r20]))
        #expect(status.repeatable.allSatisfy { $0.appliedAt != nil && $0.current })

        // Editing one repeatable file re-applies all of them, in order.
        let r10b = PostgresRepeatableMigration(name: "R10_count", sql: "CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql SET search_path FROM CURRENT AS $$ SELECT count(*) * 10 FROM items $$;")
        status = try await migrator.status(PostgresMigrationSet(versioned: versioned, repeatable: [r10b, r20]))
        #expect(status.repeatable.map(\.current) == [false, true])
        let edited = try await migrator.migrate(PostgresMigrationSet(versioned: versioned, repeatable: [r10b, r20]))
        #expect(edited.repeatable.map(\.name) == ["R10_count", "R20_view"])
        #expect(try await client.query("SELECT n FROM \(unescaped: schema).item_stats").first?.decode(Int.self, at: 0) == 20)

        // A broken repeatable file: nothing of this run stays, the error names the file, and the
        // next run tries again.
        let r10c = PostgresRepeatableMigration(name: "R10_count", sql: "CREATE OR REPLACE FUNCTION item_count() RETURNS bigint LANGUAGE sql SET search_path FROM CURRENT AS $$ SELECT count(*) * 100 FROM items $$;")
        let broken = PostgresRepeatableMigration(name: "R30_broken", sql: "SELECT no_such_column FROM items;")
        let failure = await #expect(throws: PostgresError.self) {
            try await migrator.migrate(PostgresMigrationSet(versioned: versioned, repeatable: [r10c, r20, broken]))
        }
        #expect(failure?.code == .migration)
        #expect(failure?.message.contains("R30_broken.sql") == true)
        #expect(try await client.query("SELECT n FROM \(unescaped: schema).item_stats").first?.decode(Int.self, at: 0) == 20)
        let recorded = try await client.query("SELECT name, checksum FROM \(unescaped: schema).schema_migrations_repeatable ORDER BY name")
        #expect(try recorded.map { try $0.decode(String.self, at: 1) } == [r10b.checksum, r20.checksum])

        // A file that is removed loses its record (and nothing else runs).
        let removed = try await migrator.migrate(PostgresMigrationSet(versioned: versioned, repeatable: [r10b]))
        #expect(removed.repeatable.isEmpty)
        #expect(try await client.query("SELECT count(*) FROM \(unescaped: schema).schema_migrations_repeatable").first?.decode(Int.self, at: 0) == 1)
    }
}
