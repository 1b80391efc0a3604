import Foundation

/// A JSON value of any shape, for the parts of provider requests and responses Sluice passes
/// through without a fixed schema (request bodies it amends, tool-call `input` objects, job
/// metadata, the raw `routes:`/`limits:` configuration sections).
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Integral values are written without a fraction (`16`, not `16.0`): token counts
            // and limits must look like integers to strict servers.
            if value.rounded() == value, abs(value) < 9.0e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses a JSON document (strict RFC 8259; the rules are in `JSONValueParser`).
    /// `[UInt8]`, `ArraySlice<UInt8>` and `Data` are read in place.
    ///
    /// - Throws: ``JSONParseError`` with the byte offset and the reason.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        try JSONValueParser.parse(bytes)
    }

    /// The compact JSON text of this value, with keys sorted by their UTF-8 bytes (deterministic
    /// output, the same bytes `JSONEncoder` with `.sortedKeys` writes; see `JSONValueWriter`).
    public func serialized() -> [UInt8] {
        JSONValueWriter.serialize(self)
    }

    /// The compact JSON text of this value as a string.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// The member `key` of an object, nil for other values or a missing member.
    public subscript(key: String) -> JSONValue? {
        get {
            if case .object(let members) = self { return members[key] }
            return nil
        }
        set {
            if case .object(var members) = self {
                members[key] = newValue
                self = .object(members)
            }
        }
    }

    /// The string, or nil for other values.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, or nil for other values.
    public var doubleValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The number as an integer when it is integral, or a string holding an integer.
    public var intValue: Int? {
        switch self {
        case .number(let value) where value.rounded() == value && abs(value) < 9.0e15: Int(value)
        case .string(let text): Int(text)
        default: nil
        }
    }

    /// The Boolean, or nil for other values (`"true"`/`"false"` strings are accepted too).
    public var boolValue: Bool? {
        switch self {
        case .bool(let value): value
        case .string("true"): true
        case .string("false"): false
        default: nil
        }
    }

    /// The elements, or nil for other values.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members, or nil for other values.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Whether this is JSON `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
