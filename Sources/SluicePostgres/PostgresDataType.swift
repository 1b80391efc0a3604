/// A PostgreSQL type, identified by its OID (`pg_type.oid`). Used to tag bound parameters and
/// to tell decoders what a result column holds.
public struct PostgresDataType: Hashable, Sendable, CustomStringConvertible {
    /// The type OID; 0 means "unspecified" (the server infers the parameter type).
    public let oid: UInt32
    /// Wraps an OID.
    public init(oid: UInt32) { self.oid = oid }
    public var description: String { "oid \(oid)" }

    /// Let the server infer the type from context.
    public static let unspecified = PostgresDataType(oid: 0)
    public static let bool = PostgresDataType(oid: 16)
    public static let bytea = PostgresDataType(oid: 17)
    public static let name = PostgresDataType(oid: 19)
    public static let int8 = PostgresDataType(oid: 20)
    public static let int2 = PostgresDataType(oid: 21)
    public static let int4 = PostgresDataType(oid: 23)
    public static let text = PostgresDataType(oid: 25)
    public static let oidType = PostgresDataType(oid: 26)
    public static let json = PostgresDataType(oid: 114)
    public static let float4 = PostgresDataType(oid: 700)
    public static let float8 = PostgresDataType(oid: 701)
    public static let bpchar = PostgresDataType(oid: 1042)
    public static let varchar = PostgresDataType(oid: 1043)
    public static let date = PostgresDataType(oid: 1082)
    public static let timestamp = PostgresDataType(oid: 1114)
    public static let timestamptz = PostgresDataType(oid: 1184)
    public static let interval = PostgresDataType(oid: 1186)
    public static let numeric = PostgresDataType(oid: 1700)
    public static let uuid = PostgresDataType(oid: 2950)
    public static let jsonb = PostgresDataType(oid: 3802)

    public static let boolArray = PostgresDataType(oid: 1000)
    public static let byteaArray = PostgresDataType(oid: 1001)
    public static let int2Array = PostgresDataType(oid: 1005)
    public static let int4Array = PostgresDataType(oid: 1007)
    public static let textArray = PostgresDataType(oid: 1009)
    public static let int8Array = PostgresDataType(oid: 1016)
    public static let float8Array = PostgresDataType(oid: 1022)
    public static let timestamptzArray = PostgresDataType(oid: 1185)
    public static let intervalArray = PostgresDataType(oid: 1187)
    public static let uuidArray = PostgresDataType(oid: 2951)
    public static let jsonbArray = PostgresDataType(oid: 3807)
}
