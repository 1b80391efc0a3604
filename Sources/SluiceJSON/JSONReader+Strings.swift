extension JSONReader {
    /// A string's place in the input: its content between the quotes, and whether that holds
    /// escapes (so cannot be taken as it is).
    struct StringToken {
        var content: Range<Int>
        var escaped: Bool
    }

    /// Reads a string.
    public mutating func readString() throws(JSONError) -> String {
        try expect(.string)
        return decode(try scanString())
    }

    /// Checks the string whose opening quote is at `index` and steps past its closing quote.
    ///
    /// Errors come in the order a decoder meets them: an unescaped control byte, a bad escape or
    /// the end of the input where it stands, invalid UTF-8 only once the closing quote is reached
    /// (at the offset of the opening one).
    mutating func scanString() throws(JSONError) -> StringToken {
        let quote = index
        var cursor = index + 1
        var escaped = false
        var validUTF8 = true
        while true {
            cursor = plainEnd(from: cursor)
            guard cursor < bytes.count else { throw JSONError(.unexpectedEnd, at: cursor) }
            switch bytes[cursor] {
            case UInt8(ascii: "\""):
                guard validUTF8 else { throw JSONError(.invalidUTF8, at: quote) }
                index = cursor + 1
                return StringToken(content: quote + 1..<cursor, escaped: escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                cursor = try scanEscape(at: cursor)
            case 0..<0x20:
                throw JSONError(.controlCharacter, at: cursor)
            default:
                let length = utf8SequenceLength(at: cursor)
                if length == 0 { validUTF8 = false }
                cursor += max(length, 1)
            }
        }
    }

    /// The first offset from `start` whose byte is not plain string text: a quote, a backslash,
    /// a control byte, a non-ASCII byte or the end. Eight bytes at a time while they are plain.
    private func plainEnd(from start: Int) -> Int {
        var cursor = start
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101, highBits: UInt64 = 0x8080_8080_8080_8080
            while bytes.count - cursor >= 8 {
                let word = UnsafeRawPointer(base + cursor).loadUnaligned(as: UInt64.self)
                // A byte below 0x20, equal to `"` or `\`, or with its high bit set (SWAR tests of
                // all eight bytes at once; exact for the bytes below 0x80 that reach them).
                let quotes = word ^ (ones &* 0x22), backslashes = word ^ (ones &* 0x5C)
                let special = (word &- ones &* 0x20) | (quotes &- ones) & ~quotes | (backslashes &- ones) & ~backslashes
                guard (special & ~word | word) & highBits == 0 else { break }
                cursor += 8
            }
        }
        while cursor < bytes.count, bytes[cursor] >= 0x20, bytes[cursor] < 0x80,
              bytes[cursor] != UInt8(ascii: "\""), bytes[cursor] != UInt8(ascii: "\\") {
            cursor += 1
        }
        return cursor
    }

    /// Checks the escape whose backslash is at `backslash`; returns the offset after it. A high
    /// surrogate must be followed by an escaped low surrogate; a low surrogate alone is an error.
    private func scanEscape(at backslash: Int) throws(JSONError) -> Int {
        guard backslash + 1 < bytes.count else { throw JSONError(.unexpectedEnd, at: backslash + 1) }
        switch bytes[backslash + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return backslash + 2
        case UInt8(ascii: "u"):
            let next = backslash + 6
            switch try hexQuad(at: backslash + 2) {
            case 0xD800...0xDBFF:
                guard next + 1 < bytes.count, bytes[next] == UInt8(ascii: "\\"), bytes[next + 1] == UInt8(ascii: "u"),
                      (0xDC00...0xDFFF).contains(try hexQuad(at: next + 2)) else {
                    throw JSONError(.loneSurrogate, at: backslash)
                }
                return next + 6
            case 0xDC00...0xDFFF:
                throw JSONError(.loneSurrogate, at: backslash)
            default:
                return next
            }
        default:
            throw JSONError(.invalidEscape, at: backslash)
        }
    }

    /// The four hex digits at `offset` (after a `\u`) as a UTF-16 code unit.
    private func hexQuad(at offset: Int) throws(JSONError) -> UInt16 {
        var unit: UInt16 = 0
        for position in offset..<offset + 4 {
            guard position < bytes.count else { throw JSONError(.unexpectedEnd, at: position) }
            // '0'...'9', then 'a'...'f' in either case (setting 0x20 lower-cases a letter).
            let byte = bytes[position]
            let value = byte &- UInt8(ascii: "0") < 10 ? byte &- UInt8(ascii: "0") : (byte | 0x20) &- UInt8(ascii: "a") &+ 10
            guard value < 16 else { throw JSONError(.invalidEscape, at: offset - 2) }
            unit = unit << 4 | UInt16(value)
        }
        return unit
    }

    /// The length of the well-formed UTF-8 sequence of two to four bytes at `start`, or 0
    /// (Unicode Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
    private func utf8SequenceLength(at start: Int) -> Int {
        let length: Int
        var secondLow: UInt8 = 0x80, secondHigh: UInt8 = 0xBF
        switch bytes[start] {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondHigh = 0x9F
        case 0xF0: length = 4; secondLow = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondHigh = 0x8F
        default: return 0
        }
        guard bytes.count - start >= length, (secondLow...secondHigh).contains(bytes[start + 1]) else { return 0 }
        for offset in 2..<length where bytes[start + offset] & 0xC0 != 0x80 { return 0 }
        return length
    }

    /// The text of a string ``scanString()`` accepted.
    mutating func decode(_ token: StringToken) -> String {
        guard token.escaped else { return String(decoding: UnsafeBufferPointer(rebasing: bytes[token.content]), as: UTF8.self) }
        scratch.removeAll(keepingCapacity: true)
        var cursor = token.content.lowerBound
        while cursor < token.content.upperBound {
            // Copy the run of bytes up to the next backslash, then decode that escape.
            let runStart = cursor
            while cursor < token.content.upperBound, bytes[cursor] != UInt8(ascii: "\\") { cursor = max(plainEnd(from: cursor), cursor + 1) }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<cursor]))
            guard cursor < token.content.upperBound else { break }
            switch bytes[cursor + 1] {
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32((try? hexQuad(at: cursor + 2)) ?? 0)
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = UInt32((try? hexQuad(at: cursor + 8)) ?? 0)
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    cursor += 6
                }
                UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { scratch.append($0) }
                cursor += 4
            default: scratch.append(bytes[cursor + 1])  // `"`, `\` and `/` stand for themselves
            }
            cursor += 2
        }
        return String(decoding: scratch, as: UTF8.self)
    }
}
