/// A type that reads itself from JSON through a ``JSONReader``; ``JSONReader/read(_:from:)``
/// reads one from a whole document.
///
/// The conformances here follow `JSONDecoder`'s rules for the same Swift types: a `String` is
/// only a JSON string, an `Int` only a number with an integral value in range, an `Optional` is
/// `nil` for `null`, an `Array` is a JSON array of its element type. A type with members reads an
/// object with ``JSONReader/readObject(_:)`` and skips the members it does not know.
public protocol JSONReadable {
    /// Reads one value at the reader's position.
    init(reading reader: inout JSONReader) throws(JSONError)
}

extension String: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readString() }
}

extension Int: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readInt() }
}

extension Double: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readDouble() }
}

extension Bool: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readBool() }
}

extension JSONValue: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readValue() }
}

extension Optional: JSONReadable where Wrapped: JSONReadable {
    /// `nil` for `null`, otherwise a `Wrapped`.
    public init(reading reader: inout JSONReader) throws(JSONError) {
        self = try reader.readNull() ? nil : Wrapped(reading: &reader)
    }
}

extension Array: JSONReadable where Element: JSONReadable {
    public init(reading reader: inout JSONReader) throws(JSONError) {
        var elements: [Element] = []
        try reader.readArray { reader throws(JSONError) in elements.append(try Element(reading: &reader)) }
        self = elements
    }
}
