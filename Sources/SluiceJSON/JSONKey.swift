/// The key of an object member, as ``JSONReader/readObject(_:)`` hands it over: a view of the
/// input, valid only during that call. Match it against literals without building a `String`:
///
/// ```swift
/// try reader.readObject { key, reader throws(JSONError) in
///     switch key {
///     case "id": id = try reader.read()
///     default: try reader.skipValue()
///     }
/// }
/// ```
public struct JSONKey: CustomStringConvertible {
    /// The key's bytes as written between the quotes.
    private let bytes: UnsafeBufferPointer<UInt8>
    /// The decoded key when it was written with escapes.
    private let unescaped: String?

    init(bytes: UnsafeBufferPointer<UInt8>, unescaped: String?) {
        self.bytes = bytes
        self.unescaped = unescaped
    }

    /// The key as a string.
    public var string: String { unescaped ?? String(decoding: bytes, as: UTF8.self) }

    /// The key as a string (``string``).
    public var description: String { string }

    /// Whether the key is `text` (comparing UTF-8 bytes, escapes decoded).
    public static func == (key: JSONKey, text: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        guard var unescaped = key.unescaped else { return equal(key.bytes, expected) }
        return unescaped.withUTF8 { equal($0, expected) }
    }

    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for position in 0..<a.count where a[position] != b[position] { return false }
        return true
    }

    /// Lets a `switch` over a key match string literals.
    public static func ~= (pattern: StaticString, key: JSONKey) -> Bool {
        key == pattern
    }
}

/// A key points into bytes that live only during ``JSONReader/readObject(_:)``.
@available(*, unavailable)
extension JSONKey: Sendable {}
