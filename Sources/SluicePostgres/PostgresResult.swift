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
    ///
    /// Inlinable, so a caller in another module gets a copy specialised for `T` (unspecialised,
    /// every call instantiated `T`'s metadata at run time: ~2 % of a worker's CPU decoding
    /// claimed jobs); the bookkeeping and error paths stay out of line.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int) throws(PostgresError) -> T {
        guard let cell = try cell(at: index) else {
            guard let null = T.postgresNull else { throw nullError(at: index, type: "\(T.self)") }
            return null
        }
        do {
            return try T(postgresText: cell.bytes, type: cell.type)
        } catch {
            throw annotated(error, at: index)
        }
    }

    /// Decodes the value of the first column called `column`, looking at position `index`
    /// first: when the column is where the caller expects it (a statement whose column list the
    /// caller wrote), no name lookup is needed. A column elsewhere is found by name as usual.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String, expectedAt index: Int) throws(PostgresError) -> T {
        try decode(type, at: try position(of: column, expectedAt: index))
    }

    /// Decodes the value of the first column called `column`.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String) throws(PostgresError) -> T {
        try decode(type, at: try position(of: column, expectedAt: -1))
    }

    /// The bytes and type of cell `index` of this row, nil for NULL; throws for an index out of range.
    @usableFromInline
    func cell(at index: Int) throws(PostgresError) -> (bytes: ArraySlice<UInt8>, type: PostgresDataType)? {
        let columns = storage.columnNames.count
        guard index >= 0, index < columns else {
            throw PostgresError(code: .decoding, message: "column index \(index) out of range (the result has \(columns) columns)")
        }
        let cell = self.index * columns + index
        let start = storage.starts[cell]
        guard start >= 0 else { return nil }
        return (storage.bytes[start..<storage.ends[cell]], storage.columnTypes[index])
    }

    /// The index of the first column called `column`: `expected` when that column is there,
    /// else found by name.
    @usableFromInline
    func position(of column: String, expectedAt expected: Int) throws(PostgresError) -> Int {
        if expected >= 0, expected < storage.columnNames.count, storage.columnNames[expected] == column {
            return expected
        }
        guard let index = storage.columnIndex[column] else {
            throw PostgresError(
                code: .decoding,
                message: "no column '\(column)' in the result (columns: \(storage.columnNames.joined(separator: ", ")))",
                column: column)
        }
        return index
    }

    @usableFromInline
    func nullError(at index: Int, type: String) -> PostgresError {
        let name = storage.columnNames[index]
        return PostgresError(code: .decoding, message: "column '\(name)' is NULL but \(type) is not optional", column: name)
    }

    @usableFromInline
    func annotated(_ error: PostgresError, at index: Int) -> PostgresError {
        var e = error
        let name = storage.columnNames[index]
        e.message = "column '\(name)': " + e.message
        e.column = name
        return e
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
