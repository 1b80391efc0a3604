public import Foundation
import SluiceSupport

/// A Swift type a result column can be decoded into (from PostgreSQL's text format).
///
/// SQL NULL decodes only into `Optional`; decoding NULL into anything else is a `.decoding`
/// error naming the column.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value from its text form; `type` is the column's type.
    init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError)
    /// What SQL NULL decodes to, or `nil` when NULL is not allowed (everything but `Optional`).
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

/// A type that can also be the element of a decoded array column.
///
/// `UInt8` is special: `[UInt8]` decodes `bytea` (`\x…` hex), not an array.
public protocol PostgresArrayDecodable: PostgresDecodable {
    /// Decodes an array column. The default parses a one-dimensional array literal.
    static func decodePostgresArray(_ text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) -> [Self]
}

extension PostgresArrayDecodable {
    public static func decodePostgresArray(_ text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) -> [Self] {
        let elements = try PostgresArrayLiteral.parse(text)
        var result: [Self] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            if let element {
                result.append(try Self(postgresText: element[...], type: .unspecified))
            } else if let null = Self.postgresNull {
                result.append(null)
            } else {
                throw PostgresError(code: .decoding, message: "array element is NULL but \(Self.self) is not optional")
            }
        }
        return result
    }
}

func decodingError(_ what: Any.Type, _ text: ArraySlice<UInt8>) -> PostgresError {
    let shown = text.count > 64 ? String(decoding: text.prefix(64), as: UTF8.self) + "…" : String(decoding: text, as: UTF8.self)
    return PostgresError(code: .decoding, message: "cannot decode \(what) from '\(shown)'")
}

extension String: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        self = String(decoding: text, as: UTF8.self)
    }
}

extension Int64: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = PostgresTime.parseInt(text) else { throw decodingError(Int64.self, text) }
        self = v
    }
}

extension Int: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = PostgresTime.parseInt(text) else { throw decodingError(Int.self, text) }
        self = Int(v)
    }
}

extension Int32: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = PostgresTime.parseInt(text), let i = Int32(exactly: v) else { throw decodingError(Int32.self, text) }
        self = i
    }
}

extension Int16: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = PostgresTime.parseInt(text), let i = Int16(exactly: v) else { throw decodingError(Int16.self, text) }
        self = i
    }
}

extension Double: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = Double(String(decoding: text, as: UTF8.self)) else { throw decodingError(Double.self, text) }
        self = v
    }
}

extension Bool: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        switch text.first {
        case UInt8(ascii: "t") where text.count == 1: self = true
        case UInt8(ascii: "f") where text.count == 1: self = false
        default:
            if text.elementsEqual("true".utf8) { self = true } else if text.elementsEqual("false".utf8) { self = false } else {
                throw decodingError(Bool.self, text)
            }
        }
    }
}

/// `UInt8` decodes a small integer; `[UInt8]` decodes `bytea` (`\x…` hex output).
extension UInt8: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let v = PostgresTime.parseInt(text), let i = UInt8(exactly: v) else { throw decodingError(UInt8.self, text) }
        self = i
    }

    public static func decodePostgresArray(_ text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) -> [UInt8] {
        guard text.count >= 2, text.count % 2 == 0, text[text.startIndex] == UInt8(ascii: "\\"),
            text[text.startIndex + 1] == UInt8(ascii: "x")
        else { throw decodingError([UInt8].self, text) }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 2 - 1)
        var i = text.startIndex + 2
        while i < text.endIndex {
            guard let hi = Hex.digit(text[i]), let lo = Hex.digit(text[i + 1]) else {
                throw decodingError([UInt8].self, text)
            }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

extension Date: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let d = PostgresTime.parseDate(text) else { throw decodingError(Date.self, text) }
        self = d
    }
}

extension UUID: PostgresArrayDecodable {
    /// PostgreSQL's text form, 8-4-4-4-12 hex digits. (Parsed by hand: `UUID(uuidString:)`
    /// goes through `sscanf` on Linux and was a fifth of a bulk enqueue's client CPU.)
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard text.count == 36 else { throw decodingError(UUID.self, text) }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var i = text.startIndex
            for n in 0..<16 {
                if n == 4 || n == 6 || n == 8 || n == 10 {
                    guard text[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                }
                guard let hi = Hex.digit(text[i]), let lo = Hex.digit(text[i + 1]) else {
                    return false
                }
                out[n] = hi << 4 | lo
                i += 2
            }
            return true
        }
        guard ok else { throw decodingError(UUID.self, text) }
        self.init(uuid: bytes)
    }
}

extension PostgresJSON: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        self.init(bytes: Array(text))
    }
}

extension Duration: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        guard let d = PostgresTime.parseInterval(text) else { throw decodingError(Duration.self, text) }
        self = d
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        self = .some(try Wrapped(postgresText: text, type: type))
    }
    public static var postgresNull: Self? { .some(.none) }
}

extension Optional: PostgresArrayDecodable where Wrapped: PostgresArrayDecodable {}

extension Array: PostgresDecodable where Element: PostgresArrayDecodable {
    public init(postgresText text: ArraySlice<UInt8>, type: PostgresDataType) throws(PostgresError) {
        self = try Element.decodePostgresArray(text, type: type)
    }
}

/// Parser for one-dimensional array literals: `{a,"b c",NULL,"x\"y"}`.
enum PostgresArrayLiteral {
    static func parse(_ text: ArraySlice<UInt8>) throws(PostgresError) -> [[UInt8]?] {
        var p = text.startIndex
        let e = text.endIndex
        // Optional dimension decoration: [0:2]={…}
        if p < e, text[p] == UInt8(ascii: "[") {
            guard let eq = text.firstIndex(of: UInt8(ascii: "=")) else { throw decodingError([Any].self, text) }
            p = eq + 1
        }
        guard p < e, text[p] == UInt8(ascii: "{"), text[e - 1] == UInt8(ascii: "}") else {
            throw decodingError([Any].self, text)
        }
        p += 1
        let end = e - 1
        var result: [[UInt8]?] = []
        if p == end { return result }
        while true {
            var element: [UInt8] = []
            if text[p] == UInt8(ascii: "{") {
                throw PostgresError(code: .decoding, message: "multi-dimensional arrays are not supported")
            }
            if text[p] == UInt8(ascii: "\"") {
                p += 1
                var closed = false
                while p < end {
                    let c = text[p]
                    if c == UInt8(ascii: "\\"), p + 1 < end {
                        element.append(text[p + 1])
                        p += 2
                    } else if c == UInt8(ascii: "\"") {
                        p += 1
                        closed = true
                        break
                    } else {
                        element.append(c)
                        p += 1
                    }
                }
                guard closed else { throw decodingError([Any].self, text) }
                result.append(element)
            } else {
                while p < end, text[p] != UInt8(ascii: ",") {
                    element.append(text[p])
                    p += 1
                }
                result.append(element.elementsEqual("NULL".utf8) ? nil : element)
            }
            if p == end { break }
            guard text[p] == UInt8(ascii: ",") else { throw decodingError([Any].self, text) }
            p += 1
            guard p < end else { throw decodingError([Any].self, text) }
        }
        return result
    }
}
