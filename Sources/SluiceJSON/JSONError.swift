/// Why JSON text was rejected, and where.
///
/// ``code`` tells what was wrong and ``offset`` the byte (from the start of the input) where it
/// was found. The description names both and never quotes the input, so it is safe to log
/// whatever the document held: `invalid JSON at byte 12: expected ':' after an object key`.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong. New codes may be added: match the static members you handle and keep a
    /// default case.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case unexpectedEnd, unexpectedByte, expectedKey, expectedColon, expectedCommaOrEnd
            case invalidNumber, numberOutOfRange, invalidEscape, loneSurrogate, controlCharacter
            case invalidUTF8, tooDeep, trailingData, typeMismatch
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The input ended inside a value.
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A byte that cannot start a value (or continue a literal) here.
        public static let unexpectedByte = Code(.unexpectedByte)
        /// An object member that does not start with a string key.
        public static let expectedKey = Code(.expectedKey)
        /// An object key not followed by `:`.
        public static let expectedColon = Code(.expectedColon)
        /// A member not followed by `,` or the end of its array or object.
        public static let expectedCommaOrEnd = Code(.expectedCommaOrEnd)
        /// A number that breaks the JSON grammar (leading zeros, a bare `.` or `e`).
        public static let invalidNumber = Code(.invalidNumber)
        /// A number that overflows a Double, or a non-zero one that underflows to zero.
        public static let numberOutOfRange = Code(.numberOutOfRange)
        /// A backslash escape JSON does not define, or a `\u` without four hex digits.
        public static let invalidEscape = Code(.invalidEscape)
        /// A `\u` escape of a UTF-16 surrogate that is not part of a pair.
        public static let loneSurrogate = Code(.loneSurrogate)
        /// A byte below 0x20 inside a string.
        public static let controlCharacter = Code(.controlCharacter)
        /// A string that is not valid UTF-8 (the offset is its opening quote).
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// Arrays and objects nested deeper than ``JSONSyntax/maximumDepth``.
        public static let tooDeep = Code(.tooDeep)
        /// Something other than whitespace after the document's value.
        public static let trailingData = Code(.trailingData)
        /// Well-formed JSON, but not the type a ``JSONReader`` was asked to read.
        public static let typeMismatch = Code(.typeMismatch)

        /// What the code means, in a few words.
        public var description: String {
            switch base {
            case .unexpectedEnd: "unexpected end of input"
            case .unexpectedByte: "unexpected byte"
            case .expectedKey: "expected a string key"
            case .expectedColon: "expected ':' after an object key"
            case .expectedCommaOrEnd: "expected ',' or the end of the container"
            case .invalidNumber: "invalid number"
            case .numberOutOfRange: "number overflows or underflows a Double"
            case .invalidEscape: "invalid escape sequence"
            case .loneSurrogate: "\\u escape of an unpaired UTF-16 surrogate"
            case .controlCharacter: "unescaped control character in a string"
            case .invalidUTF8: "invalid UTF-8 in a string"
            case .tooDeep: "arrays and objects nested more than 512 deep"
            case .trailingData: "data after the JSON value"
            case .typeMismatch: "a value of another type than expected"
            }
        }
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
    public var description: String { "invalid JSON at byte \(offset): \(code)" }
}
