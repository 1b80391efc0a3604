/// A type that reads itself from JSON through a ``JSONReader``; ``JSONReader/read(_:from:)``
/// reads one from a whole document.
///
/// The conformances here follow `JSONDecoder`'s rules for the same Swift types: a `String` is
/// only a JSON string, an `Int` only a number with an integral value in range, an `Optional` is
/// `nil` for `null`, an `Array` is a JSON array of its element type. A struct read from an object
/// conforms through ``JSONObjectReadable``, or reads with ``JSONReader/readObject(_:)`` itself.
public protocol JSONReadable {
    /// Reads one value at the reader's position.
    init(reading reader: inout JSONReader) throws(JSONError)
}

extension String: JSONReadable {
    /// A JSON string.
    @inlinable public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readString() }
}

extension Int: JSONReadable {
    /// A number with an integral value in `Int`'s range (`3`, `3.0` and `3e0` alike).
    @inlinable public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readInt() }
}

extension Double: JSONReadable {
    /// A number.
    @inlinable public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readDouble() }
}

extension Bool: JSONReadable {
    /// `true` or `false`.
    @inlinable public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readBool() }
}

extension JSONValue: JSONReadable {
    /// Any value.
    @inlinable public init(reading reader: inout JSONReader) throws(JSONError) { self = try reader.readValue() }
}

extension Optional: JSONReadable where Wrapped: JSONReadable {
    /// `nil` for `null`, otherwise a `Wrapped`.
    @inlinable
    public init(reading reader: inout JSONReader) throws(JSONError) {
        self = try reader.readNull() ? nil : Wrapped(reading: &reader)
    }
}

extension Array: JSONReadable where Element: JSONReadable {
    /// A JSON array of `Element`s.
    @inlinable
    public init(reading reader: inout JSONReader) throws(JSONError) {
        var elements: [Element] = []
        try reader.readArray { reader throws(JSONError) in elements.append(try Element(reading: &reader)) }
        self = elements
    }
}
