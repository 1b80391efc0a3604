/// The rows of one statement, copied out of libpq's `PGresult` into one contiguous buffer
/// (so a 100k-row result is three allocations, not 100k).
final class PostgresResultStorage: Sendable {
    let columnNames: [String]
    let columnTypes: [PostgresDataType]
    /// All non-NULL values, back to back.
    let bytes: [UInt8]
    /// For cell `row * columns + column`: start offset in `bytes`, or -1 for NULL.
    let starts: [Int]
    /// For each cell: end offset in `bytes`.
    let ends: [Int]
    let rowCount: Int
    /// Column name → index of its first occurrence, for decoding by name.
    let columnIndex: [String: Int]

    init(columnNames: [String], columnTypes: [PostgresDataType], bytes: [UInt8], starts: [Int], ends: [Int], rowCount: Int) {
        var columnIndex: [String: Int] = [:]
        for (index, name) in columnNames.enumerated() where columnIndex[name] == nil { columnIndex[name] = index }
        self.columnIndex = columnIndex
        self.columnNames = columnNames
        self.columnTypes = columnTypes
        self.bytes = bytes
        self.starts = starts
        self.ends = ends
        self.rowCount = rowCount
    }

    static let empty = PostgresResultStorage(columnNames: [], columnTypes: [], bytes: [], starts: [], ends: [], rowCount: 0)
}

/// One result row. Decode columns by index or by name.
public struct PostgresRow: Sendable {
    let storage: PostgresResultStorage
    let index: Int

    /// The result's column names, in order.
    public var columnNames: [String] { storage.columnNames }

    /// Whether the value at `index` is SQL NULL (an out-of-range index counts as NULL).
    public func isNull(at index: Int) -> Bool {
        guard index >= 0, index < storage.columnNames.count else { return true }
        return storage.starts[self.index * storage.columnNames.count + index] < 0
    }

    /// Decodes the value of column `index` (0-based).
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int) throws(PostgresError) -> T {
        let columns = storage.columnNames.count
        guard index >= 0, index < columns else {
            throw PostgresError(code: .decoding, message: "column index \(index) out of range (the result has \(columns) columns)")
        }
        let cell = self.index * columns + index
        let start = storage.starts[cell]
        let name = storage.columnNames[index]
        if start < 0 {
            guard let null = T.postgresNull else {
                throw PostgresError(
                    code: .decoding, message: "column '\(name)' is NULL but \(T.self) is not optional", column: name)
            }
            return null
        }
        do {
            return try T(postgresText: storage.bytes[start..<storage.ends[cell]], type: storage.columnTypes[index])
        } catch {
            var e = error
            e.message = "column '\(name)': " + e.message
            e.column = name
            throw e
        }
    }

    /// Decodes the value of the first column called `column`, looking at position `index`
    /// first: when the column is where the caller expects it (a statement whose column list the
    /// caller wrote), no name lookup is needed. A column elsewhere is found by name as usual.
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String, expectedAt index: Int) throws(PostgresError) -> T {
        if index >= 0, index < storage.columnNames.count, storage.columnNames[index] == column {
            return try decode(type, at: index)
        }
        return try decode(type, column: column)
    }

    /// Decodes the value of the first column called `column`.
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String) throws(PostgresError) -> T {
        guard let index = storage.columnIndex[column] else {
            throw PostgresError(
                code: .decoding,
                message: "no column '\(column)' in the result (columns: \(storage.columnNames.joined(separator: ", ")))",
                column: column)
        }
        return try decode(type, at: index)
    }
}

/// The outcome of one statement: its rows (possibly none) and the affected-row count.
public struct PostgresResult: Sendable, Sequence {
    /// The rows, in server order.
    public var rows: [PostgresRow]
    /// Rows inserted/updated/deleted/copied (or selected), from the command tag; 0 when the
    /// command reports no count.
    public var affectedRows: Int
    /// The column names, in order (empty for commands without a result set).
    public var columnNames: [String]

    init(storage: PostgresResultStorage, affectedRows: Int) {
        self.rows = (0..<storage.rowCount).map { PostgresRow(storage: storage, index: $0) }
        self.affectedRows = affectedRows
        self.columnNames = storage.columnNames
    }

    /// An empty result (no rows, no columns).
    public init() {
        self.rows = []
        self.affectedRows = 0
        self.columnNames = []
    }

    public func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}
