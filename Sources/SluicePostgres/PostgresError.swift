import SluiceSupport

/// An error from `SluicePostgres`.
///
/// `code` says what kind of failure it was (extensible: compare with `==` against the static
/// members); `message` is for humans; the optional fields carry PostgreSQL's diagnostic fields
/// (`PG_DIAG_*`) for errors raised by the server, so callers can branch on `sqlState`,
/// `constraint` or `column` instead of parsing text. The fields are read-only outside this
/// module.
///
/// `description` is safe to log: the code, the message and the SQLSTATE. The server's detail
/// and hint (which quote row values), the object names and the failing statement are only in
/// `debugDescription` (`String(reflecting:)`). Neither ever contains a password: connection
/// errors are scrubbed before they are created, URLs are shown with their password replaced by
/// `<redacted>`, and bind parameters are never recorded.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A short stable identifier such as `server`.
        public var description: String { name }

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
    public internal(set) var code: Code
    /// A human-readable message (PostgreSQL's primary message for server errors).
    public internal(set) var message: String
    /// The five-character SQLSTATE, e.g. `"23505"` (unique violation) or a custom `"SL001"`.
    public internal(set) var sqlState: String?
    /// `PG_DIAG_MESSAGE_DETAIL`.
    public internal(set) var detail: String?
    /// `PG_DIAG_MESSAGE_HINT`.
    public internal(set) var hint: String?
    /// `PG_DIAG_SCHEMA_NAME`.
    public internal(set) var schema: String?
    /// `PG_DIAG_TABLE_NAME`.
    public internal(set) var table: String?
    /// `PG_DIAG_COLUMN_NAME`.
    public internal(set) var column: String?
    /// `PG_DIAG_CONSTRAINT_NAME`.
    public internal(set) var constraint: String?
    /// The SQL text of the statement that failed (never its parameters), when the error came
    /// from running one. Only in `debugDescription`.
    public internal(set) var query: String?

    /// Creates an error with a code and a message and no server fields: for
    /// ``PostgresDecodable`` and ``PostgresEncodable`` conformances and other code built on
    /// this module that must report a `.decoding` or `.encoding` failure. The message must not
    /// contain a secret.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// An error with PostgreSQL's diagnostic fields.
    init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        schema: String? = nil, table: String? = nil, column: String? = nil, constraint: String? = nil,
        query: String? = nil
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
        self.query = query
    }

    /// `PostgresError.<code>: <message> (SQLSTATE …)` — safe to log.
    public var description: String {
        var text = ErrorFormat.summary("PostgresError", code: code, message)
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        return text
    }

    /// Every field, including the server's detail and hint and the failing statement.
    public var debugDescription: String {
        ErrorFormat.debug("PostgresError", code: code, [
            ("message", message), ("sqlState", sqlState), ("detail", detail), ("hint", hint),
            ("schema", schema), ("table", table), ("column", column), ("constraint", constraint),
            ("query", query),
        ])
    }

    /// True for errors after which the connection cannot be used again.
    var isConnectionLevel: Bool {
        code == .connectionClosed || code == .connectionFailed || code == .protocolViolation
    }

    /// This error with `query` set to `sql` (unless an inner call set it already), with the
    /// connection's password removed in case the SQL text quotes it.
    func attaching(query sql: String, scrubbing password: Redacted?) -> PostgresError {
        guard query == nil else { return self }
        var error = self
        if let password = password?.revealed, !password.isEmpty, sql.contains(password) {
            error.query = sql.replacing(password, with: "<redacted>")
        } else {
            error.query = sql
        }
        return error
    }
}
