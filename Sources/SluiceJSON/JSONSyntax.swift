/// Checks that bytes are one well-formed JSON document, without building any values.
///
/// The rules are ``JSONReader``'s, so `isValid` is true exactly when ``JSONValue/parse(_:)``
/// would succeed: strict RFC 8259 (any value at the top level, only space, tab, LF and CR as
/// whitespace, no trailing commas or trailing data, no byte order mark), valid UTF-8 with no
/// unescaped control characters in strings, no unpaired `\u` surrogate escapes, numbers by the
/// JSON grammar that neither overflow a Double nor underflow to zero (`1e400`, `1e-400`), and
/// arrays and objects nested at most 512 deep.
public enum JSONSyntax {
    /// The deepest nesting of arrays and objects accepted.
    public static let maximumDepth = 512

    /// The type of a JSON value.
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    /// Whether `bytes` is one well-formed JSON document. Contiguous inputs (`[UInt8]`,
    /// `ArraySlice<UInt8>`, `Data`) are scanned in place, others are copied first.
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        kind(bytes) != nil
    }

    /// The type of the top-level value of `bytes`, or nil when it is not one well-formed JSON
    /// document (``isValid(_:)``).
    public static func kind(_ bytes: some Collection<UInt8>) -> Kind? {
        try? JSONReader.document(bytes) { reader throws(JSONError) in
            let kind = try reader.nextKind()
            try reader.skipValue()
            return kind
        }
    }

    /// JSON whitespace: space, tab, LF, CR.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
