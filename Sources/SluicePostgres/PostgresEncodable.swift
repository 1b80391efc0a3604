public import Foundation
import SluiceSupport

/// A Swift value that can be bound as a statement parameter.
///
/// Parameters are sent in PostgreSQL's text format together with an explicit type OID, so the
/// server never has to guess (`String` is `text`, `Int` is `int8`, `Date` is `timestamptz`…).
/// Cast in SQL when the column has another type, e.g. `$1::job_state` for an enum.
/// Binding `nil` (or an `Optional` that is `nil`) sends SQL NULL.
public protocol PostgresEncodable: Sendable {
    /// The parameter's type as sent to the server.
    var postgresDataType: PostgresDataType { get }
    /// Appends the value in PostgreSQL text format (without a terminating zero byte).
    func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError)
    /// Whether the value is SQL NULL (only `Optional.none` is). Default `false`.
    var isPostgresNull: Bool { get }
}

extension PostgresEncodable {
    public var isPostgresNull: Bool { false }
}

/// A type that can also be an element of a bound array (`= ANY($1)`, `unnest($1::…[])`).
///
/// `UInt8` is special: `[UInt8]` is `bytea`, not an array.
public protocol PostgresArrayEncodable: PostgresEncodable {
    /// The OID of the array type whose elements are `Self` (e.g. `text[]` for `String`).
    static var postgresArrayDataType: PostgresDataType { get }
    /// Appends `array` in text format. The default writes an array literal `{"a","b",NULL}`.
    static func encodePostgresArray(_ array: [Self], into buffer: inout [UInt8]) throws(PostgresError)
}

extension PostgresArrayEncodable {
    public static func encodePostgresArray(_ array: [Self], into buffer: inout [UInt8]) throws(PostgresError) {
        buffer.append(UInt8(ascii: "{"))
        var element: [UInt8] = []
        for (i, value) in array.enumerated() {
            if i > 0 { buffer.append(UInt8(ascii: ",")) }
            if value.isPostgresNull {
                buffer.append(contentsOf: "NULL".utf8)
                continue
            }
            element.removeAll(keepingCapacity: true)
            try value.encodePostgresText(into: &element)
            buffer.append(UInt8(ascii: "\""))
            for b in element {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { buffer.append(UInt8(ascii: "\\")) }
                buffer.append(b)
            }
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: "}"))
    }
}

extension String: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .text }
    public static var postgresArrayDataType: PostgresDataType { .textArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        if utf8.contains(0) {
            throw PostgresError(code: .encoding, message: "PostgreSQL text cannot contain a zero byte (U+0000)")
        }
        buffer.append(contentsOf: utf8)
    }
}

extension Substring: PostgresEncodable {
    public var postgresDataType: PostgresDataType { .text }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        try String(self).encodePostgresText(into: &buffer)
    }
}

extension Int: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) { buffer.append(contentsOf: description.utf8) }
}

extension Int64: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) { buffer.append(contentsOf: description.utf8) }
}

extension Int32: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .int4 }
    public static var postgresArrayDataType: PostgresDataType { .int4Array }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) { buffer.append(contentsOf: description.utf8) }
}

extension Int16: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .int2 }
    public static var postgresArrayDataType: PostgresDataType { .int2Array }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) { buffer.append(contentsOf: description.utf8) }
}

extension Double: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .float8 }
    public static var postgresArrayDataType: PostgresDataType { .float8Array }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        if isNaN {
            buffer.append(contentsOf: "NaN".utf8)
        } else if isInfinite {
            buffer.append(contentsOf: (self < 0 ? "-Infinity" : "Infinity").utf8)
        } else {
            buffer.append(contentsOf: description.utf8)
        }
    }
}

extension Bool: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .bool }
    public static var postgresArrayDataType: PostgresDataType { .boolArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        buffer.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }
}

/// A lone `UInt8` binds as `int2`; `[UInt8]` binds as `bytea`, sent as `\x` hex.
extension UInt8: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .int2 }
    public static var postgresArrayDataType: PostgresDataType { .bytea }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) { buffer.append(contentsOf: description.utf8) }
    public static func encodePostgresArray(_ array: [UInt8], into buffer: inout [UInt8]) throws(PostgresError) {
        encodeHexBytea(array, into: &buffer)
    }
}

func encodeHexBytea(_ bytes: [UInt8], into buffer: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    buffer.reserveCapacity(buffer.count + 2 + bytes.count * 2)
    buffer.append(UInt8(ascii: "\\"))
    buffer.append(UInt8(ascii: "x"))
    for b in bytes {
        buffer.append(hex[Int(b >> 4)])
        buffer.append(hex[Int(b & 0xF)])
    }
}

extension Date: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .timestamptz }
    public static var postgresArrayDataType: PostgresDataType { .timestamptzArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        PostgresTime.format(self, into: &buffer)
    }
}

extension UUID: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .uuid }
    public static var postgresArrayDataType: PostgresDataType { .uuidArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        appendLowercasedText(into: &buffer)
    }
}

extension PostgresJSON: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .jsonb }
    public static var postgresArrayDataType: PostgresDataType { .jsonbArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        if bytes.contains(0) {
            throw PostgresError(code: .encoding, message: "JSON text cannot contain a zero byte")
        }
        buffer.append(contentsOf: bytes)
    }
}

/// `interval`, sent as whole microseconds.
extension Duration: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { .interval }
    public static var postgresArrayDataType: PostgresDataType { .intervalArray }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        PostgresTime.format(self, into: &buffer)
    }
}

/// `nil` binds SQL NULL (typed as `Wrapped`).
extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresDataType: PostgresDataType {
        switch self {
        case .some(let value): value.postgresDataType
        case .none: .unspecified
        }
    }
    public var isPostgresNull: Bool { self == nil }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        if let value = self { try value.encodePostgresText(into: &buffer) }
    }
}

extension Optional: PostgresArrayEncodable where Wrapped: PostgresArrayEncodable {
    public static var postgresArrayDataType: PostgresDataType { Wrapped.postgresArrayDataType }
}

/// One-dimensional arrays (`text[]`, `int8[]`, `uuid[]`…; `[UInt8]` is `bytea`); `nil`
/// elements become NULL.
extension Array: PostgresEncodable where Element: PostgresArrayEncodable {
    public var postgresDataType: PostgresDataType { Element.postgresArrayDataType }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        try Element.encodePostgresArray(self, into: &buffer)
    }
}

/// A value sent as text with type `unspecified`, so the server infers the type from context
/// (useful for enum columns or types this module has no Swift counterpart for).
public struct PostgresUntyped: PostgresEncodable {
    /// The value's text form.
    public var text: String
    /// Wraps the text form of a value.
    public init(_ text: String) { self.text = text }
    public var postgresDataType: PostgresDataType { .unspecified }
    public func encodePostgresText(into buffer: inout [UInt8]) throws(PostgresError) {
        try text.encodePostgresText(into: &buffer)
    }
}
