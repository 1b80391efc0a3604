/// Writes a ``JSONValue`` as compact JSON text, byte for byte what `JSONEncoder` with
/// `[.sortedKeys, .withoutEscapingSlashes]` produced for it through its `Codable` conformance:
///
/// - object keys in the byte order of their UTF-8 (what swift-foundation's `.sortedKeys` uses);
/// - strings escape `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t` and other bytes below 0x20 as
///   `\u00xx` (lower-case hex); `/`, DEL and non-ASCII are written as they are;
/// - integral numbers of magnitude below 9e15 as integers (`-0` as `0`), other numbers as
///   Swift's shortest round-trip `description` without a trailing `.0` (`0.1`, `1e+20`,
///   `5e-324`, `9000000000000000`);
/// - arrays and objects nested 512 deep or more make the whole output `null`, as
///   `JSONEncoder`'s failure did through ``JSONValue/serialized()``.
///
/// One difference: a non-finite number (which ``JSONValue/parse(_:)`` never produces) is written
/// as `null` in its place, where `JSONEncoder` failed and the whole output became `null`.
struct JSONValueWriter {
    /// Containers nested this deep are not written (`JSONEncoder`'s limit).
    static let maximumDepth = 512

    private(set) var bytes: [UInt8] = []

    /// The JSON text of `value`, or `null` when it nests too deep.
    static func serialize(_ value: JSONValue) -> [UInt8] {
        var writer = JSONValueWriter()
        writer.bytes.reserveCapacity(256)
        guard writer.write(value, depth: 0) else { return Array("null".utf8) }
        return writer.bytes
    }

    /// Appends `value`; false when containers nest `maximumDepth` deep.
    private mutating func write(_ value: JSONValue, depth: Int) -> Bool {
        switch value {
        case .null: append("null")
        case .bool(let flag): append(flag ? "true" : "false")
        case .number(let number): writeNumber(number)
        case .string(let string): writeString(string)
        case .array(let elements):
            guard depth + 1 < Self.maximumDepth else { return false }
            bytes.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                guard write(element, depth: depth + 1) else { return false }
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            guard depth + 1 < Self.maximumDepth else { return false }
            bytes.append(UInt8(ascii: "{"))
            let sorted = members.sorted { Self.utf8Precedes($0.key, $1.key) }
            for (position, member) in sorted.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(member.key)
                bytes.append(UInt8(ascii: ":"))
                guard write(member.value, depth: depth + 1) else { return false }
            }
            bytes.append(UInt8(ascii: "}"))
        }
        return true
    }

    private mutating func append(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    // MARK: Numbers

    private mutating func writeNumber(_ number: Double) {
        guard number.isFinite else { return append("null") }
        if number.rounded() == number, abs(number) < 9.0e15 {
            writeInteger(Int64(number))
        } else {
            var text = number.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            bytes.append(contentsOf: text.utf8)
        }
    }

    private mutating func writeInteger(_ integer: Int64) {
        if integer < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = integer.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for Int64's 19 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    // MARK: Strings

    private mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for position in utf8.indices {
                let byte = utf8[position]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<position]))
                runStart = position + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: StaticString = "0123456789abcdef"
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              hex.utf8Start[Int(byte >> 4)], hex.utf8Start[Int(byte & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Whether `a` sorts before `b` comparing their UTF-8 bytes (`JSONEncoder`'s key order; not
    /// `String <`, which compares canonically equivalent forms).
    static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { a in b.withUTF8 { b in a.lexicographicallyPrecedes(b) } }
    }
}
