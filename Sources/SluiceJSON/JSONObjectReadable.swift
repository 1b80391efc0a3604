/// A type read from a JSON object member by member: it starts empty (``init()``) and
/// ``jsonMembers`` says, per key, how that member's value is read into it.
///
/// With optional properties read by ``JSONReader/read(_:)``, the rules are `JSONDecoder`'s for a
/// `Decodable` struct: a member that is absent or `null` leaves its property nil, a value of
/// another type fails the whole read, members nobody named are skipped (still checked as JSON).
/// Duplicate keys: the last one wins.
///
/// ```swift
/// struct Delta: JSONObjectReadable {
///     var text: String?
///     var stopReason: String?
///     static let jsonMembers: JSONMembers<Self> = [
///         "text": { $0.text = try $1.read() }, "stop_reason": { $0.stopReason = try $1.read() },
///     ]
/// }
/// ```
public protocol JSONObjectReadable: JSONReadable {
    /// A value with no member read yet.
    init()
    /// The members to read.
    static var jsonMembers: JSONMembers<Self> { get }
}

extension JSONObjectReadable {
    /// Reads an object's members into an empty value.
    @inlinable
    public init(reading reader: inout JSONReader) throws(JSONError) {
        var value = Self()
        try Self.jsonMembers.read(into: &value, from: &reader)
        self = value
    }
}

/// The members a ``JSONObjectReadable`` type reads: JSON keys, each with the closure that reads
/// its value into the value being built, usually `{ $0.property = try $1.read() }`.
public struct JSONMembers<Root>: Sendable, ExpressibleByDictionaryLiteral {
    /// Reads one member's value (the reader is at it) into the value being built, throwing what the
    /// reader throws. (It is untyped so that closure literals fit it; any error other than a
    /// ``JSONError`` becomes ``JSONError/Code/typeMismatch`` at the reader's offset.)
    public typealias Read = @Sendable (inout Root, inout JSONReader) throws -> Void

    @usableFromInline let keys: [StaticString]
    @usableFromInline let reads: [Read]

    /// Keys and how each member's value is read.
    public init(dictionaryLiteral members: (StaticString, Read)...) {
        keys = members.map(\.0)
        reads = members.map(\.1)
    }

    /// Reads the object at the reader's position into `root`.
    @inlinable
    func read(into root: inout Root, from reader: inout JSONReader) throws(JSONError) {
        try reader.readObject { key, reader throws(JSONError) in
            for position in keys.indices where key == keys[position] {
                do {
                    return try reads[position](&root, &reader)
                } catch let error as JSONError {
                    throw error
                } catch {
                    throw JSONError(.typeMismatch, at: reader.offset)  // a Read that throws something else
                }
            }
            try reader.skipValue()
        }
    }
}
