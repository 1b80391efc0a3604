/// One schema migration: a version, a name and the SQL that applies it.
public struct PostgresMigration: Sendable, Hashable {
    /// Orders migrations; unique.
    public var version: Int
    /// A short description (from the file name `NNNN_description.sql`).
    public var name: String
    /// The SQL, run with the simple-query protocol inside one transaction (it must not
    /// contain its own BEGIN/COMMIT, nor statements that cannot run in a transaction such as
    /// `CREATE INDEX CONCURRENTLY`).
    public var sql: String
    /// 64-bit FNV-1a of the SQL's UTF-8 bytes, as 16 hex digits. An applied migration whose
    /// file changed no longer matches the recorded checksum.
    public var checksum: String

    /// Creates a migration; the checksum is computed from `sql`.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = fnv1a64Hex(Array(sql.utf8))
    }

    /// `NNNN_name.sql`, how the migration's file is (or would be) called.
    public var fileName: String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "_" + name + ".sql"
    }
}

func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
}

func fnv1a64Hex(_ bytes: [UInt8]) -> String {
    let hex = String(fnv1a64(bytes), radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
