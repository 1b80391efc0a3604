/// A repeatable migration: SQL that (re)defines functions and views, kept in one file per topic
/// and edited in place, unlike a versioned ``PostgresMigration``, which is never edited once
/// released.
///
/// ``PostgresMigrator`` applies the repeatable migrations after the versioned ones, in name
/// order, all of them in one transaction, whenever any of them is new or its checksum differs
/// from the one recorded (Flyway's `R__` files follow the same idea). Their SQL must therefore
/// be safe to run again: `CREATE OR REPLACE`, or `DROP … IF EXISTS` before `CREATE`.
public struct PostgresRepeatableMigration: Sendable, Hashable {
    /// The file name without `.sql`, starting with `R` (e.g. `R30_validation`). Orders the
    /// repeatable migrations (byte-wise) and identifies them in the bookkeeping table.
    public var name: String
    /// The SQL, run with the simple-query protocol inside the transaction that applies every
    /// repeatable migration.
    public var sql: String
    /// 64-bit FNV-1a of the SQL's UTF-8 bytes, as 16 hex digits.
    public var checksum: String

    /// Creates a repeatable migration; the checksum is computed from `sql`.
    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
        self.checksum = fnv1a64Hex(Array(sql.utf8))
    }

    /// `name.sql`, how the migration's file is (or would be) called.
    public var fileName: String { name + ".sql" }
}
