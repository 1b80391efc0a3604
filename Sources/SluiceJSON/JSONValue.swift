/// A JSON value of any shape, for the parts of provider requests and responses Sluice passes
/// through without a fixed schema (request bodies it amends, tool-call `input` objects, job
/// metadata, configuration sections).
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number (JSON text converts to the nearest Double).
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object; its members have no order (``serialized()`` sorts the keys).
    case object([String: JSONValue])

    /// Parses a JSON document (strict RFC 8259; the rules are ``JSONReader``'s). Duplicate object
    /// keys: the last one wins. `[UInt8]`, `ArraySlice<UInt8>` and `Data` are read in place.
    ///
    /// - Throws: ``JSONError`` with the byte offset and what was wrong.
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONError) -> JSONValue {
        try JSONReader.read(JSONValue.self, from: bytes)
    }

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
