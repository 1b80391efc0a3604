import Foundation
import SluiceJSON

/// A JSON value kept as its UTF-8 text (requests, metadata, raw responses): Sluice stores and
/// forwards these documents without re-encoding them.
public struct JSONDocument: Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 JSON text.
    public var bytes: [UInt8]

    /// Wraps JSON text. Validity is checked where the document enters the system
    /// (``JobSpec`` validation), not here.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Wraps JSON text given as a string.
    public init(_ text: String) { self.bytes = Array(text.utf8) }

    /// Encodes a value with `JSONEncoder`.
    public init<T: Encodable>(encoding value: T) throws {
        self.bytes = Array(try JSONEncoder().encode(value))
    }

    /// An empty object, `{}`.
    public static let emptyObject = JSONDocument("{}")

    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public var description: String { text }

    /// Decodes the document with `JSONDecoder`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// The top-level JSON type (`object`, `array`, `string`, …), or nil when the text is not JSON.
    var topLevelKind: String? {
        switch JSONSyntax.kind(bytes) {
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .null: "null"
        case .number, .bool: "scalar"
        case nil: nil
        }
    }
}

