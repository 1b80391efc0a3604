/// A statement and its parameters, written as one string interpolation: each interpolated
/// value becomes a placeholder (`$1`, `$2`, …) and a bind, never SQL text.
///
/// ```swift
/// let query: PostgresQuery = "SELECT * FROM jobs WHERE id = \(id) AND tenant = \(tenant)"
/// // sql: "SELECT * FROM jobs WHERE id = $1 AND tenant = $2", binds: [id, tenant]
/// ```
///
/// Text that must be part of the statement itself (an identifier, a fixed fragment chosen by
/// the program) is interpolated with `\(unescaped:)`; never pass caller input there.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    /// The statement with `$n` placeholders.
    public var sql: String
    /// One value per placeholder, in order (`nil` is SQL NULL).
    public var binds: [(any PostgresEncodable)?]

    /// A statement given as text with its binds (for statements built at run time).
    public init(unsafeSQL sql: String, binds: [(any PostgresEncodable)?] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// Builds a ``PostgresQuery``: literals are SQL, interpolated values are binds.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql: String
        var binds: [(any PostgresEncodable)?]

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql = ""
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds = []
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A parameter: appends `$n` and binds `value`.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        /// Text appended to the statement as it is (identifiers, fixed fragments). Never caller
        /// input.
        public mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}

extension PostgresConnection {
    /// Runs one statement built with ``PostgresQuery``. See ``query(_:_:prepared:)``.
    public func query(_ query: PostgresQuery, prepared: Bool = false) async throws(PostgresError) -> PostgresResult {
        try await self.query(query.sql, query.binds, prepared: prepared)
    }

    /// Sends the statements in one round trip. See ``pipeline(_:)-([(sql:binds:)])``.
    public func pipeline(_ queries: [PostgresQuery]) async throws(PostgresError) -> [PostgresResult] {
        try await pipeline(queries.map { (sql: $0.sql, binds: $0.binds) })
    }
}

extension PostgresClient {
    /// Runs one statement built with ``PostgresQuery`` on a pooled connection.
    public func query(_ query: PostgresQuery, prepared: Bool = false) async throws -> PostgresResult {
        try await withConnection { connection in
            try await connection.query(query, prepared: prepared)
        }
    }
}
