import Foundation

/// Builds JSON text directly into bytes, embedding already-encoded documents (requests, raw
/// provider responses) without parsing them again. Used for the JSON Sluice sends to its SQL
/// functions.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    public mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma = false }
    public mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    /// Writes an object key; the next value call writes its value.
    public mutating func key(_ name: String) {
        separate()
        Self.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) { separate(); Self.appendString(value, to: &bytes); needsComma = true }
    public mutating func int(_ value: Int) { separate(); bytes.append(contentsOf: Array(String(value).utf8)); needsComma = true }
    public mutating func bool(_ value: Bool) { separate(); bytes.append(contentsOf: Array((value ? "true" : "false").utf8)); needsComma = true }
    public mutating func null() { separate(); bytes.append(contentsOf: Array("null".utf8)); needsComma = true }

    /// A finite double; NaN and infinities become null.
    public mutating func double(_ value: Double) {
        guard value.isFinite else { return null() }
        separate()
        bytes.append(contentsOf: Array("\(value)".utf8))
        needsComma = true
    }

    /// Embeds JSON text as it is (the caller guarantees it is valid JSON).
    public mutating func raw(_ json: [UInt8]) { separate(); bytes.append(contentsOf: json); needsComma = true }

    /// `"key": value` pairs that skip nil values.
    public mutating func field(_ name: String, _ value: String?) { if let value { key(name); string(value) } }
    public mutating func field(_ name: String, _ value: Int?) { if let value { key(name); int(value) } }
    public mutating func field(_ name: String, _ value: Double?) { if let value { key(name); double(value) } }
    public mutating func field(_ name: String, _ value: Bool?) { if let value { key(name); bool(value) } }
    public mutating func field(_ name: String, raw value: [UInt8]?) { if let value { key(name); raw(value) } }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    /// Appends `string` as a JSON string literal.
    public static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: copy them whole.
        var string = string
        let copied = string.withUTF8 { utf8 -> Bool in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: utf8)
            return true
        }
        if copied {
            out.append(UInt8(ascii: "\""))
            return
        }
        for unit in string.utf8 {
            switch unit {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(unit >> 4)], hex[Int(unit & 0xF)]])
            default: out.append(unit)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
