import SluiceSupport

/// Why ``JSONValue/parse(_:)`` rejected a document, and where.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Reason: String, Sendable, Hashable {
        case unexpectedEnd = "unexpected end of input"
        case unexpectedByte = "unexpected byte"
        case expectedKey = "expected a string key"
        case expectedColon = "expected ':' after an object key"
        case expectedCommaOrEnd = "expected ',' or the end of the container"
        case invalidNumber = "invalid number"
        case numberOutOfRange = "number overflows or underflows a Double"
        case invalidEscape = "invalid escape sequence"
        case loneSurrogate = "\\u escape of an unpaired UTF-16 surrogate"
        case controlCharacter = "unescaped control character in a string"
        case invalidUTF8 = "invalid UTF-8 in a string"
        case tooDeep = "arrays and objects nested more than 512 deep"
        case trailingData = "data after the JSON value"
    }

    /// The byte offset (from the start of the input) where the problem was found. For
    /// ``Reason/invalidUTF8`` it is the offset of the string's opening quote.
    public var offset: Int
    /// What was wrong.
    public var reason: Reason

    /// An error at byte `offset` for `reason`.
    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    /// `invalid JSON at byte N: reason`.
    public var description: String { "invalid JSON at byte \(offset): \(reason.rawValue)" }
}

/// A strict RFC 8259 recursive-descent parser from UTF-8 bytes to ``JSONValue``.
///
/// - Any value may stand at the top level; whitespace (space, tab, LF, CR only) may surround it
///   and nothing else may follow it. No trailing commas, no byte order mark, no comments.
/// - Strings: the escapes of RFC 8259 including `\uXXXX` and surrogate pairs; an unpaired
///   surrogate escape is an error (as `JSONDecoder` treats it); unescaped bytes below 0x20 and
///   invalid UTF-8 are errors.
/// - Numbers follow the JSON grammar (no leading zeros, `+`, `.5`, `NaN`) and convert with
///   correct rounding. A number that overflows to infinity, or a non-zero number that
///   underflows to zero (`1e-400`), is an error, as with `JSONDecoder`.
/// - Duplicate object keys: the last one wins.
/// - Arrays and objects may nest 512 deep (as with `JSONDecoder`); deeper is an error.
struct JSONValueParser {
    /// The deepest nesting of arrays and objects accepted.
    static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    /// Reused buffer for strings with escapes.
    private var scratch: [UInt8] = []

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON document; contiguous inputs (`[UInt8]`, `ArraySlice`, `Data`) are read in
    /// place, others are copied first.
    static func parse(_ input: some Collection<UInt8>) throws -> JSONValue {
        if let result = try input.withContiguousStorageIfAvailable({ try parse($0) }) {
            return result
        }
        return try Array(input).withUnsafeBufferPointer { try parse($0) }
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var parser = JSONValueParser(bytes)
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error(.trailingData) }
        return value
    }

    // MARK: Values

    private mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error(.unexpectedByte)
        }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard bytes[index] == UInt8(ascii: "\"") else { throw error(.expectedKey) }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard bytes[index] == UInt8(ascii: ":") else { throw error(.expectedColon) }
            index += 1
            members[key] = try parseValue()
            if try endOfMembers(closing: UInt8(ascii: "}")) { return .object(members) }
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            if try endOfMembers(closing: UInt8(ascii: "]")) { return .array(elements) }
        }
    }

    /// Consumes the opening bracket or brace and counts the nesting level.
    private mutating func enterContainer() throws {
        depth += 1
        guard depth <= Self.maximumDepth else { throw error(.tooDeep) }
        index += 1
    }

    /// After a member: consumes `,` (false: another member follows) or `closing` (true).
    private mutating func endOfMembers(closing: UInt8) throws -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: ","): index += 1; return false
        case closing: index += 1; return true
        default: throw error(.expectedCommaOrEnd)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws {
        let count = literal.utf8CodeUnitCount
        for offset in 0..<count {
            guard index + offset < bytes.count else { throw error(.unexpectedEnd, at: index + offset) }
            guard bytes[index + offset] == literal.utf8Start[offset] else { throw error(.unexpectedByte, at: index + offset) }
        }
        index += count
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private func error(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? index, reason: reason)
    }

    // MARK: Strings

    /// Parses the string starting at the opening quote at `index`.
    private mutating func parseString() throws -> String {
        let quote = index
        let start = index + 1
        var cursor = start
        // Fast path: no escapes, so the text is the bytes between the quotes.
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if byte == UInt8(ascii: "\"") {
                index = cursor + 1
                guard let string = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<cursor]), as: UTF8.self) else {
                    throw error(.invalidUTF8, at: quote)
                }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error(.controlCharacter, at: cursor) }
            cursor += 1
        }
        guard cursor < bytes.count else { throw error(.unexpectedEnd, at: cursor) }

        // Escapes: decode into `scratch`.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<cursor]))
        while cursor < bytes.count {
            let byte = bytes[cursor]
            switch byte {
            case UInt8(ascii: "\""):
                index = cursor + 1
                guard let string = String(validating: scratch, as: UTF8.self) else { throw error(.invalidUTF8, at: quote) }
                return string
            case UInt8(ascii: "\\"):
                cursor = try decodeEscape(at: cursor)
            case 0..<0x20:
                throw error(.controlCharacter, at: cursor)
            default:
                // Copy the run of ordinary bytes up to the next quote, backslash or control byte.
                var runEnd = cursor + 1
                while runEnd < bytes.count, bytes[runEnd] >= 0x20, bytes[runEnd] != UInt8(ascii: "\""), bytes[runEnd] != UInt8(ascii: "\\") {
                    runEnd += 1
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[cursor..<runEnd]))
                cursor = runEnd
            }
        }
        throw error(.unexpectedEnd, at: cursor)
    }

    /// Decodes the escape whose backslash is at `backslash` into `scratch`; returns the offset after it.
    private mutating func decodeEscape(at backslash: Int) throws -> Int {
        guard backslash + 1 < bytes.count else { throw error(.unexpectedEnd, at: backslash + 1) }
        let simple: UInt8
        switch bytes[backslash + 1] {
        case UInt8(ascii: "\""): simple = 0x22
        case UInt8(ascii: "\\"): simple = 0x5C
        case UInt8(ascii: "/"): simple = 0x2F
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            let unit = try hexQuad(at: backslash + 2)
            var scalar = UInt32(unit)
            var next = backslash + 6
            switch unit {
            case 0xD800...0xDBFF:
                // A high surrogate must be followed by an escaped low surrogate.
                guard next + 1 < bytes.count, bytes[next] == UInt8(ascii: "\\"), bytes[next + 1] == UInt8(ascii: "u") else {
                    throw error(.loneSurrogate, at: backslash)
                }
                let low = try hexQuad(at: next + 2)
                guard (0xDC00...0xDFFF).contains(low) else { throw error(.loneSurrogate, at: backslash) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                next += 6
            case 0xDC00...0xDFFF:
                throw error(.loneSurrogate, at: backslash)
            default:
                break
            }
            appendUTF8(scalar)
            return next
        default:
            throw error(.invalidEscape, at: backslash)
        }
        scratch.append(simple)
        return backslash + 2
    }

    /// The four hex digits at `offset` as a UTF-16 code unit.
    private func hexQuad(at offset: Int) throws -> UInt16 {
        var unit: UInt16 = 0
        for position in offset..<offset + 4 {
            guard position < bytes.count else { throw error(.unexpectedEnd, at: position) }
            guard let digit = Hex.digit(bytes[position]) else { throw error(.invalidEscape, at: offset - 2) }
            unit = unit << 4 | UInt16(digit)
        }
        return unit
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(0xC0 | UInt8(scalar >> 6))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(0xE0 | UInt8(scalar >> 12))
            scratch.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        default:
            scratch.append(0xF0 | UInt8(scalar >> 18))
            scratch.append(0x80 | UInt8((scalar >> 12) & 0x3F))
            scratch.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    // MARK: Numbers

    /// Exact powers of ten for the fast path (10^22 is the largest exactly representable one).
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// Parses the number at `index` (its first byte is `-` or a digit).
    private mutating func parseNumber() throws -> Double {
        let start = index
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }

        // Up to 19 significant digits accumulate exactly into `significand`.
        var significand: UInt64 = 0
        var significantDigits = 0
        var fractionDigits = 0

        // Integer part: `0` or a non-zero digit followed by digits.
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error(.invalidNumber) }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                accumulate(bytes[index], into: &significand, digits: &significantDigits)
                index += 1
            }
        }
        // Fraction: `.` and at least one digit.
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
            while index < bytes.count, isDigit(bytes[index]) {
                accumulate(bytes[index], into: &significand, digits: &significantDigits)
                fractionDigits += 1
                index += 1
            }
        }
        // Exponent: `e`/`E`, an optional sign, at least one digit (saturated; only the fast
        // path reads it).
        var exponent = 0
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            var exponentNegative = false
            if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
                guard index < bytes.count else { throw error(.unexpectedEnd) }
            }
            guard isDigit(bytes[index]) else { throw error(.invalidNumber) }
            while index < bytes.count, isDigit(bytes[index]) {
                exponent = min(exponent * 10 + Int(bytes[index] - UInt8(ascii: "0")), 1_000_000)
                index += 1
            }
            if exponentNegative { exponent = -exponent }
        }

        // Zero (any spelling, `0e-400` included) is exact.
        if significantDigits == 0 { return negative ? -0.0 : 0.0 }

        // Fast path (Clinger): an exact significand below 2^53 scaled by an exact power of ten
        // is a single correctly rounded operation.
        let scale = exponent - fractionDigits
        if significantDigits <= 19, significand <= 1 << 53, (-22...22).contains(scale) {
            var value = Double(significand)
            value = scale < 0 ? value / Self.powersOfTen[-scale] : value * Self.powersOfTen[scale]
            return negative ? -value : value
        }

        // Otherwise the C library's correctly rounded conversion of the validated text.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite, value != 0 else {
            throw error(.numberOutOfRange, at: start)
        }
        return value
    }

    /// Adds a digit to the significand; leading zeros do not count, digits past the 19th are
    /// only counted (they send the number to the slow path).
    private func accumulate(_ byte: UInt8, into significand: inout UInt64, digits: inout Int) {
        let digit = UInt64(byte - UInt8(ascii: "0"))
        if digits == 0, digit == 0 { return }
        if digits < 19 { significand = significand * 10 + digit }
        digits += 1
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
}
