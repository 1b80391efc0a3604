/// An error from `SluicePostgres`.
///
/// `code` says what kind of failure it was (extensible, like swift-jobs' `JobQueueError`);
/// `message` is for humans; the optional fields carry PostgreSQL's diagnostic fields
/// (`PG_DIAG_*`) for errors raised by the server, so callers can branch on `sqlState`,
/// `constraint` or `column` instead of parsing text.
///
/// `description` never contains a password: connection errors are scrubbed before they are
/// created and URLs are shown with their password replaced by `<redacted>`.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A short stable identifier such as `"server"`.
        public let rawValue: String
        /// Creates a code; prefer the static members.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The URL or conninfo string could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// Connecting (or authenticating) failed.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection was closed (by us, by the server, or by the network) — the statement
        /// may or may not have run. The connection is unusable; the pool replaces it.
        public static let connectionClosed = Code("connectionClosed")
        /// The server reported an SQL error; see `sqlState` and the other fields.
        public static let server = Code("server")
        /// No pooled connection became free within `acquireTimeout`.
        public static let poolTimeout = Code("poolTimeout")
        /// The pool was shut down.
        public static let poolClosed = Code("poolClosed")
        /// A result value could not be decoded into the requested Swift type.
        public static let decoding = Code("decoding")
        /// A parameter could not be encoded.
        public static let encoding = Code("encoding")
        /// The task was cancelled; the statement was cancelled on the server (`PQcancel`).
        public static let cancelled = Code("cancelled")
        /// `COPY … FROM STDIN` failed (the server fields say why).
        public static let copyFailed = Code("copyFailed")
        /// libpq or the server did something this wrapper does not expect.
        public static let protocolViolation = Code("protocolViolation")
        /// A migration could not be loaded or applied (bad file name, changed checksum…).
        public static let migration = Code("migration")
        /// The API was misused (e.g. a transaction on a connection that is inside another
        /// caller's operation).
        public static let invalidUsage = Code("invalidUsage")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable message (PostgreSQL's primary message for server errors).
    public var message: String
    /// The five-character SQLSTATE, e.g. `"23505"` (unique violation) or a custom `"SL001"`.
    public var sqlState: String?
    /// `PG_DIAG_MESSAGE_DETAIL`.
    public var detail: String?
    /// `PG_DIAG_MESSAGE_HINT`.
    public var hint: String?
    /// `PG_DIAG_SCHEMA_NAME`.
    public var schema: String?
    /// `PG_DIAG_TABLE_NAME`.
    public var table: String?
    /// `PG_DIAG_COLUMN_NAME`.
    public var column: String?
    /// `PG_DIAG_CONSTRAINT_NAME`.
    public var constraint: String?

    /// Creates an error.
    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        schema: String? = nil, table: String? = nil, column: String? = nil, constraint: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.schema = schema
        self.table = table
        self.column = column
        self.constraint = constraint
    }

    public var description: String {
        var text = "PostgresError.\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += " detail: \(detail)" }
        if let hint { text += " hint: \(hint)" }
        var where_: [String] = []
        if let schema { where_.append("schema=\(schema)") }
        if let table { where_.append("table=\(table)") }
        if let column { where_.append("column=\(column)") }
        if let constraint { where_.append("constraint=\(constraint)") }
        if !where_.isEmpty { text += " [" + where_.joined(separator: " ") + "]" }
        return text
    }

    /// True for errors after which the connection cannot be used again.
    var isConnectionLevel: Bool {
        code == .connectionClosed || code == .connectionFailed || code == .protocolViolation
    }
}
