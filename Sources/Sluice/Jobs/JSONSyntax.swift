import SluiceSupport

/// Checks that bytes are one well-formed JSON document, without building any values.
///
/// The rules are those of `JSONValue.parse` (SluiceProviders), so `isValid` is true exactly when
/// that parse would succeed: strict RFC 8259 (any value at the top level, only space, tab, LF and
/// CR as whitespace, no trailing commas or trailing data, no byte order mark), valid UTF-8 with no
/// unescaped control characters in strings, no unpaired `\u` surrogate escapes, numbers by the
/// JSON grammar that neither overflow a Double nor underflow to zero (`1e400`, `1e-400`), and
/// arrays and objects nested at most 512 deep.
public enum JSONSyntax {
    /// The deepest nesting of arrays and objects accepted.
    public static let maximumDepth = 512

    /// Whether `bytes` is one well-formed JSON document. Contiguous inputs (`[UInt8]`,
    /// `ArraySlice<UInt8>`, `Data`) are scanned in place, others are copied first.
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        if let valid = bytes.withContiguousStorageIfAvailable({ isValid(buffer: $0) }) { return valid }
        return Array(bytes).withUnsafeBufferPointer { isValid(buffer: $0) }
    }

    /// The type of a JSON document's top-level value.
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    /// The type of the top-level value of `bytes`, or nil when it is not one well-formed JSON
    /// document (``isValid(_:)``).
    public static func kind(_ bytes: some Collection<UInt8>) -> Kind? {
        guard isValid(bytes), let first = bytes.first(where: { !isWhitespace($0) }) else { return nil }
        switch first {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    /// JSON whitespace: space, tab, LF, CR.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func isValid(buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        var scanner = Scanner(bytes: buffer)
        guard scanner.value() else { return false }
        scanner.skipWhitespace()
        return scanner.index == buffer.count
    }

    /// A recursive-descent scan; each method consumes one construct and returns false at the
    /// first error.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var depth = 0

        mutating func value() -> Bool {
            skipWhitespace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            default: return false
            }
        }

        mutating func object() -> Bool {
            guard enterContainer() else { return false }
            defer { depth -= 1 }
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return true
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), string() else { return false }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                guard value() else { return false }
                switch endOfMember(closing: UInt8(ascii: "}")) {
                case nil: return false
                case true?: return true
                case false?: continue
                }
            }
        }

        mutating func array() -> Bool {
            guard enterContainer() else { return false }
            defer { depth -= 1 }
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return true
            }
            while true {
                guard value() else { return false }
                switch endOfMember(closing: UInt8(ascii: "]")) {
                case nil: return false
                case true?: return true
                case false?: continue
                }
            }
        }

        /// Consumes the opening bracket or brace; false beyond the nesting limit.
        mutating func enterContainer() -> Bool {
            depth += 1
            index += 1
            return depth <= JSONSyntax.maximumDepth
        }

        /// After a member: `,` gives false (another member follows), `closing` gives true,
        /// anything else nil.
        mutating func endOfMember(closing: UInt8) -> Bool? {
            skipWhitespace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1; return false
            case closing: index += 1; return true
            default: return nil
            }
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func skipWhitespace() {
            while index < bytes.count && JSONSyntax.isWhitespace(bytes[index]) { index += 1 }
        }

        // MARK: Strings

        mutating func string() -> Bool {
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""): index += 1; return true
                case UInt8(ascii: "\\"): guard escape() else { return false }
                case 0..<0x20: return false
                case 0x20..<0x80: index += 1
                default: guard utf8Sequence() else { return false }
                }
            }
            return false
        }

        /// The escape at `index` (a backslash); a high surrogate must be followed by an escaped
        /// low surrogate, a low surrogate alone is an error.
        mutating func escape() -> Bool {
            guard index + 1 < bytes.count else { return false }
            switch bytes[index + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                 UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                index += 2
                return true
            case UInt8(ascii: "u"):
                guard let unit = hexQuad(at: index + 2) else { return false }
                index += 6
                switch unit {
                case 0xD800...0xDBFF:
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                          let low = hexQuad(at: index + 2), (0xDC00...0xDFFF).contains(low) else { return false }
                    index += 6
                    return true
                case 0xDC00...0xDFFF:
                    return false
                default:
                    return true
                }
            default:
                return false
            }
        }

        func hexQuad(at offset: Int) -> UInt16? {
            guard bytes.count - offset >= 4 else { return nil }
            var unit: UInt16 = 0
            for position in offset..<offset + 4 {
                guard let digit = Hex.digit(bytes[position]) else { return nil }
                unit = unit << 4 | UInt16(digit)
            }
            return unit
        }

        /// One multi-byte UTF-8 sequence at `index` (Unicode Table 3-7: no overlong forms, no
        /// surrogates, nothing above U+10FFFF).
        mutating func utf8Sequence() -> Bool {
            let length: Int
            var secondLow: UInt8 = 0x80, secondHigh: UInt8 = 0xBF
            switch bytes[index] {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondLow = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondHigh = 0x9F
            case 0xF0: length = 4; secondLow = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondHigh = 0x8F
            default: return false
            }
            guard bytes.count - index >= length, (secondLow...secondHigh).contains(bytes[index + 1]) else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return false }
            index += length
            return true
        }

        // MARK: Numbers

        mutating func number() -> Bool {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            // Integer part: `0` or a non-zero digit followed by digits.
            guard index < bytes.count, isDigit(bytes[index]) else { return false }
            var nonZero = false
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
                if index < bytes.count, isDigit(bytes[index]) { return false }
            } else {
                nonZero = true
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            // Fraction: `.` and at least one digit.
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { return false }
                while index < bytes.count, isDigit(bytes[index]) {
                    if bytes[index] != UInt8(ascii: "0") { nonZero = true }
                    index += 1
                }
            }
            let significandLength = index - start
            // Exponent: `e`/`E`, an optional sign, at least one digit.
            var exponent = 0
            if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { return false }
                while index < bytes.count, isDigit(bytes[index]) {
                    exponent = min(exponent * 10 + Int(bytes[index] - UInt8(ascii: "0")), 1_000_000)
                    index += 1
                }
            }
            // Range: a non-zero significand of fewer than 100 characters lies within 1e±99, so with
            // an exponent within ±200 it is well inside a Double's range (about 5e-324 to 1.8e308).
            // Anything else is converted and checked, as the parser does.
            if !nonZero || (significandLength < 100 && exponent <= 200) { return true }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let value = Double(text) else { return false }
            return value.isFinite && value != 0
        }

        func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    }
}
