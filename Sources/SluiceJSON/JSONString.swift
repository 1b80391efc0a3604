/// JSON string literals: the one escaping routine behind ``JSONWriter`` and
/// ``JSONValue/serialized()``, and quoting for text built by hand.
public enum JSONString {
    /// Which escapes stand for control characters. Either way `"` and `\` are escaped, `/`, DEL
    /// and non-ASCII text are written as they are, and `\u` escapes use lower-case hex.
    public enum Escaping: Sendable, Hashable {
        /// `\n`, `\r` and `\t`; every other byte below 0x20 as `\u00xx`.
        case basic
        /// What `JSONEncoder` writes: ``basic``, and `\b` and `\f` for U+0008 and U+000C.
        case foundation
    }

    /// Appends `string` as a JSON string literal, quotes included.
    public static func append(_ string: String, to bytes: inout [UInt8], escaping: Escaping = .basic) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            // Copy the runs between bytes that need an escape.
            var runStart = 0
            for position in utf8.indices {
                let byte = utf8[position]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<position]))
                runStart = position + 1
                appendEscape(byte, to: &bytes, escaping: escaping)
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `string` as a JSON string literal, quotes included.
    public static func quoted(_ string: String, escaping: Escaping = .basic) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count + 2)
        append(string, to: &bytes, escaping: escaping)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `string` as a JSON string literal, or `null` when it is nil.
    public static func quotedOrNull(_ string: String?, escaping: Escaping = .basic) -> String {
        string.map { quoted($0, escaping: escaping) } ?? "null"
    }

    private static func appendEscape(_ byte: UInt8, to bytes: inout [UInt8], escaping: Escaping) {
        let short: UInt8? = switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): byte
        case 0x0A: UInt8(ascii: "n")
        case 0x0D: UInt8(ascii: "r")
        case 0x09: UInt8(ascii: "t")
        case 0x08 where escaping == .foundation: UInt8(ascii: "b")
        case 0x0C where escaping == .foundation: UInt8(ascii: "f")
        default: nil
        }
        bytes.append(UInt8(ascii: "\\"))
        if let short {
            bytes.append(short)
        } else {
            let hex: StaticString = "0123456789abcdef"
            bytes.append(UInt8(ascii: "u"))
            bytes.append(UInt8(ascii: "0"))
            bytes.append(UInt8(ascii: "0"))
            bytes.append(hex.utf8Start[Int(byte >> 4)])
            bytes.append(hex.utf8Start[Int(byte & 0xF)])
        }
    }
}
