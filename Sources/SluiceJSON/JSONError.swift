/// Why JSON text was rejected, and where.
///
/// ``code`` tells what was wrong and ``offset`` the byte (from the start of the input) where it
/// was found. The description names both and never quotes the input, so it is safe to log
/// whatever the document held: `invalid JSON at byte 12: expected ':' after an object key`.
/// (The shape of the other modules' errors, except that the description keeps this wording:
/// SluiceJSON depends on nothing, `SluiceSupport.ErrorFormat` included.)
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What was wrong. New codes may be added: match the static members you handle and keep a
    /// default case.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        /// What the code means, in a few words (the end of ``JSONError/description``).
        public let reason: String

        private init(_ name: String, _ reason: String) {
            self.name = name
            self.reason = reason
        }

        /// The code's name (`trailingData`).
        public var description: String { name }

        /// The input ended inside a value.
        public static let unexpectedEnd = Code("unexpectedEnd", "unexpected end of input")
        /// A byte that cannot start a value (or continue a literal) here.
        public static let unexpectedByte = Code("unexpectedByte", "unexpected byte")
        /// An object member that does not start with a string key.
        public static let expectedKey = Code("expectedKey", "expected a string key")
        /// An object key not followed by `:`.
        public static let expectedColon = Code("expectedColon", "expected ':' after an object key")
        /// A member not followed by `,` or the end of its array or object.
        public static let expectedCommaOrEnd = Code("expectedCommaOrEnd", "expected ',' or the end of the container")
        /// A number that breaks the JSON grammar (leading zeros, a bare `.` or `e`).
        public static let invalidNumber = Code("invalidNumber", "invalid number")
        /// A number that overflows a Double, or a non-zero one that underflows to zero.
        public static let numberOutOfRange = Code("numberOutOfRange", "number overflows or underflows a Double")
        /// A backslash escape JSON does not define, or a `\u` without four hex digits.
        public static let invalidEscape = Code("invalidEscape", "invalid escape sequence")
        /// A `\u` escape of a UTF-16 surrogate that is not part of a pair.
        public static let loneSurrogate = Code("loneSurrogate", "\\u escape of an unpaired UTF-16 surrogate")
        /// A byte below 0x20 inside a string.
        public static let controlCharacter = Code("controlCharacter", "unescaped control character in a string")
        /// A string that is not valid UTF-8 (the offset is its opening quote).
        public static let invalidUTF8 = Code("invalidUTF8", "invalid UTF-8 in a string")
        /// Arrays and objects nested deeper than ``JSONSyntax/maximumDepth``.
        public static let tooDeep = Code("tooDeep", "arrays and objects nested more than 512 deep")
        /// Something other than whitespace after the document's value.
        public static let trailingData = Code("trailingData", "data after the JSON value")
        /// Well-formed JSON, but not the type a ``JSONReader`` was asked to read.
        public static let typeMismatch = Code("typeMismatch", "a value of another type than expected")
    }

    /// What was wrong.
    public internal(set) var code: Code
    /// The byte offset (from the start of the input) where the problem was found.
    public internal(set) var offset: Int

    @usableFromInline
    init(_ code: Code, at offset: Int) {
        self.code = code
        self.offset = offset
    }

    /// `invalid JSON at byte N: what was wrong`.
    public var description: String { "invalid JSON at byte \(offset): \(code.reason)" }

    /// `JSONError(code: name, offset: N)`.
    public var debugDescription: String { "JSONError(code: \(code), offset: \(offset))" }
}
