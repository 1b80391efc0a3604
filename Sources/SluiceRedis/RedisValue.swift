/// One RESP2 reply from Redis.
///
/// Bulk strings are raw bytes (Redis is binary safe); use ``string`` for UTF-8 text.
public enum RedisValue: Sendable, Hashable {
    /// A nil bulk string or nil multi-bulk (`$-1`, `*-1`), e.g. `GET` of a missing key.
    case null
    /// An integer reply (`:42`).
    case integer(Int64)
    /// A bulk string (`$3\r\nfoo`), byte for byte.
    case bulk([UInt8])
    /// A simple status reply (`+OK`, `+QUEUED`).
    case status(String)
    /// An error reply (`-ERR …`), as returned by ``RedisConnection/send(_:)`` and inside pipelines.
    case error(String)
    /// A multi-bulk reply; elements may be nested arrays.
    case array([RedisValue])

    /// Text of a bulk string (if valid UTF-8) or of a status reply; nil otherwise.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(validating: bytes, as: UTF8.self)
        case .status(let s): s
        default: nil
        }
    }

    /// The integer of an integer reply, or of a bulk string holding a decimal integer
    /// (Redis returns counters read with `GET` as bulk strings); nil otherwise.
    public var int: Int64? {
        switch self {
        case .integer(let i): i
        case .bulk(let bytes): String(validating: bytes, as: UTF8.self).flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array reply; nil otherwise.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes of a bulk string; nil otherwise.
    public var bytes: [UInt8]? {
        if case .bulk(let b) = self { return b }
        return nil
    }

    /// The message of an error reply; nil otherwise.
    public var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }

    /// True for ``null``.
    public var isNull: Bool { self == .null }
}

extension RedisValue: CustomStringConvertible {
    /// A redis-cli-like rendering for logs and test failures (bulk bytes escaped).
    public var description: String {
        switch self {
        case .null: return "(nil)"
        case .integer(let i): return "(integer) \(i)"
        case .status(let s): return s
        case .error(let e): return "(error) \(e)"
        case .bulk(let b):
            var out = "\""
            for byte in b {
                switch byte {
                case UInt8(ascii: "\""): out += "\\\""
                case UInt8(ascii: "\\"): out += "\\\\"
                case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(byte))
                case UInt8(ascii: "\n"): out += "\\n"
                case UInt8(ascii: "\r"): out += "\\r"
                default:
                    let hex = String(byte, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                }
            }
            return out + "\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
