/// Raw JSON bytes bound as / decoded from `jsonb` (or `json`). No parsing happens here:
/// the domain layer encodes and decodes with whatever JSON coder it likes.
public struct PostgresJSON: Sendable, Hashable {
    /// UTF-8 JSON text.
    public var bytes: [UInt8]
    /// Wraps UTF-8 JSON bytes.
    public init(bytes: [UInt8]) { self.bytes = bytes }
    /// Wraps a JSON string.
    public init(string: String) { self.bytes = Array(string.utf8) }
    /// The JSON as a string.
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}
