/// Builds JSON text directly into bytes, embedding already-encoded documents (requests, raw
/// provider responses) without parsing them again. Used for the JSON Sluice sends to its SQL
/// functions and prints, and by ``JSONValue/serialized()``.
public struct JSONWriter: Sendable {
    /// The text written so far.
    public private(set) var bytes: [UInt8] = []
    /// How strings are escaped.
    public let escaping: JSONString.Escaping
    private var needsComma = false

    /// An empty writer with room for `capacity` bytes.
    public init(capacity: Int = 256, escaping: JSONString.Escaping = .basic) {
        self.escaping = escaping
        bytes.reserveCapacity(capacity)
    }

    /// Opens an object (after a comma when a value came before it).
    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    /// Closes the innermost object.
    public mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    /// Opens an array (after a comma when a value came before it).
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma = false }
    /// Closes the innermost array.
    public mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    /// Writes an object key; the next value call writes its value.
    public mutating func key(_ name: String) {
        separate()
        JSONString.append(name, to: &bytes, escaping: escaping)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// A string, escaped as ``escaping`` says.
    public mutating func string(_ value: String) { separate(); JSONString.append(value, to: &bytes, escaping: escaping); needsComma = true }
    /// An integer.
    public mutating func int(_ value: Int) { separate(); appendInteger(Int64(value)); needsComma = true }
    /// `true` or `false`.
    public mutating func bool(_ value: Bool) { separate(); append(value ? "true" : "false"); needsComma = true }
    /// `null`.
    public mutating func null() { separate(); append("null"); needsComma = true }

    /// A finite double in Swift's notation (`1.0`, `1e-05`); NaN and infinities become null.
    public mutating func double(_ value: Double) {
        guard value.isFinite else { return null() }
        separate()
        bytes.append(contentsOf: "\(value)".utf8)
        needsComma = true
    }

    /// A number as `JSONEncoder` writes it: integral values of magnitude below 9e15 as integers
    /// (`-0` as `0`), others as the shortest round-trip form without a trailing `.0` (`0.1`,
    /// `1e+20`, `5e-324`, `9000000000000000`); NaN and infinities become null.
    public mutating func number(_ value: Double) {
        guard value.isFinite else { return null() }
        separate()
        if value.rounded() == value, abs(value) < 9.0e15 {
            appendInteger(Int64(value))
        } else {
            var text = value.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            bytes.append(contentsOf: text.utf8)
        }
        needsComma = true
    }

    /// Embeds JSON text as it is (the caller guarantees it is valid JSON).
    public mutating func raw(_ json: [UInt8]) { separate(); bytes.append(contentsOf: json); needsComma = true }

    /// `"key": value` pairs that skip nil values: a string member.
    public mutating func field(_ name: String, _ value: String?) { if let value { key(name); string(value) } }
    /// An integer member, skipped when nil.
    public mutating func field(_ name: String, _ value: Int?) { if let value { key(name); int(value) } }
    /// A ``double(_:)`` member, skipped when nil.
    public mutating func field(_ name: String, _ value: Double?) { if let value { key(name); double(value) } }
    /// A Boolean member, skipped when nil.
    public mutating func field(_ name: String, _ value: Bool?) { if let value { key(name); bool(value) } }
    /// A member holding JSON text as it is (``raw(_:)``), skipped when nil.
    public mutating func field(_ name: String, raw value: [UInt8]?) { if let value { key(name); raw(value) } }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func append(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private mutating func appendInteger(_ integer: Int64) {
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
}
