/// A pull reader over the UTF-8 text of one JSON document: the JSON grammar of this module,
/// which ``JSONValue/parse(_:)``, ``JSONSyntax`` and every ``JSONReadable`` type read through.
///
/// The grammar is strict RFC 8259:
/// - any value may stand at the top level; whitespace (space, tab, LF, CR only) may surround it
///   and nothing else may follow it; no trailing commas, no byte order mark, no comments;
/// - strings: the escapes of RFC 8259 including `\uXXXX` and surrogate pairs; an unpaired
///   surrogate escape, an unescaped byte below 0x20 and invalid UTF-8 are errors;
/// - numbers follow the JSON grammar (no leading zeros, `+`, `.5`, `NaN`) and convert with
///   correct rounding; one that overflows a Double, or a non-zero one that underflows to zero
///   (`1e-400`), is an error;
/// - arrays and objects nest at most ``JSONSyntax/maximumDepth`` (512) deep.
///
/// A reader exists only inside ``read(_:from:)`` (or a ``JSONReadable`` initializer it calls):
/// it points into the caller's bytes and must not be kept. Each `read…` method consumes one value,
/// skipping the whitespace before it; a method for one type throws ``JSONError/Code/typeMismatch``
/// at a well-formed value of another. After any error the reader is spent.
public struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    /// The next byte to read.
    var index = 0
    /// Arrays and objects open around the reader's position.
    var depth = 0
    /// Reused buffer for strings with escapes.
    var scratch: [UInt8] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The byte offset (from the start of the document) of the next byte to read.
    public var offset: Int { index }

    // MARK: Documents

    /// Reads `bytes` as one JSON document holding a `T`: whitespace may surround the value,
    /// nothing else may follow it. Contiguous inputs (`[UInt8]`, `ArraySlice<UInt8>`, `Data`) are
    /// read in place, others are copied first.
    public static func read<T: JSONReadable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws(JSONError) -> T {
        try document(bytes) { reader throws(JSONError) in try T(reading: &reader) }
    }

    /// Runs `body` on a reader over `input`, then requires that only whitespace is left.
    static func document<T>(_ input: some Collection<UInt8>, _ body: (inout JSONReader) throws(JSONError) -> T) throws(JSONError) -> T {
        func run(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<T, JSONError> {
            Result { () throws(JSONError) -> T in
                var reader = JSONReader(buffer)
                let value = try body(&reader)
                reader.skipWhitespace()
                guard reader.index == buffer.count else { throw reader.error(.trailingData) }
                return value
            }
        }
        let result = input.withContiguousStorageIfAvailable(run) ?? Array(input).withUnsafeBufferPointer(run)
        return try result.get()
    }

    // MARK: Values

    /// The type of the next value (skipping whitespace before it), without consuming it.
    ///
    /// - Throws: ``JSONError/Code/unexpectedEnd`` at the end of the input,
    ///   ``JSONError/Code/unexpectedByte`` at a byte that cannot start a value.
    public mutating func nextKind() throws(JSONError) -> JSONSyntax.Kind {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: throw error(.unexpectedByte)
        }
    }

    /// Reads the next value, whatever its type. Duplicate object keys: the last one wins.
    public mutating func readValue() throws(JSONError) -> JSONValue {
        switch try nextKind() {
        case .object:
            var members: [String: JSONValue] = [:]
            try readMembers { key, reader throws(JSONError) in members[key.string] = try reader.readValue() }
            return .object(members)
        case .array:
            var elements: [JSONValue] = []
            try readElements { reader throws(JSONError) in elements.append(try reader.readValue()) }
            return .array(elements)
        case .string: return .string(decode(try scanString()))
        case .number: return .number(try value(of: scanNumber()))
        case .bool: return .bool(try scanBool())
        case .null: try literal("null"); return .null
        }
    }

    /// Checks the next value and steps over it without building anything.
    public mutating func skipValue() throws(JSONError) {
        switch try nextKind() {
        case .object:
            guard try openContainer(closing: UInt8(ascii: "}")) else { return }
            repeat {
                _ = try memberKey()
                try skipValue()
            } while try nextMember(closing: UInt8(ascii: "}"))
        case .array:
            guard try openContainer(closing: UInt8(ascii: "]")) else { return }
            repeat {
                try skipValue()
            } while try nextMember(closing: UInt8(ascii: "]"))
        case .string: _ = try scanString()
        case .number: try checkRange(scanNumber())
        case .bool: _ = try scanBool()
        case .null: try literal("null")
        }
    }

    /// Reads the next value as a `T`.
    @inlinable
    public mutating func read<T: JSONReadable>(_ type: T.Type = T.self) throws(JSONError) -> T {
        try T(reading: &self)
    }

    /// Consumes the next value and returns true when it is `null`; otherwise consumes nothing and
    /// returns false.
    public mutating func readNull() throws(JSONError) -> Bool {
        guard try nextKind() == .null else { return false }
        try literal("null")
        return true
    }

    /// Reads `true` or `false`.
    public mutating func readBool() throws(JSONError) -> Bool {
        try expect(.bool)
        return try scanBool()
    }

    /// Consumes the `true` or `false` whose first byte is at `index`.
    private mutating func scanBool() throws(JSONError) -> Bool {
        let value = bytes[index] == UInt8(ascii: "t")
        try literal(value ? "true" : "false")
        return value
    }

    // MARK: Arrays and objects

    /// Reads an object, calling `body` once per member with its key and the reader positioned at
    /// its value, which `body` must read or skip. The key is valid only during the call.
    public mutating func readObject(_ body: (JSONKey, inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        try expect(.object)
        try readMembers(body)
    }

    /// Reads an array, calling `body` once per element with the reader positioned at it, which
    /// `body` must read or skip.
    public mutating func readArray(_ body: (inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        try expect(.array)
        try readElements(body)
    }

    /// ``readObject(_:)`` from the opening brace at `index`.
    private mutating func readMembers(_ body: (JSONKey, inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        guard try openContainer(closing: UInt8(ascii: "}")) else { return }
        repeat {
            let key = try memberKey()
            try body(JSONKey(bytes: UnsafeBufferPointer(rebasing: bytes[key.content]), unescaped: key.escaped ? decode(key) : nil), &self)
        } while try nextMember(closing: UInt8(ascii: "}"))
    }

    /// ``readArray(_:)`` from the opening bracket at `index`.
    private mutating func readElements(_ body: (inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        guard try openContainer(closing: UInt8(ascii: "]")) else { return }
        repeat {
            try body(&self)
        } while try nextMember(closing: UInt8(ascii: "]"))
    }

    /// Consumes a member's key and the `:` after it.
    private mutating func memberKey() throws(JSONError) -> StringToken {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard bytes[index] == UInt8(ascii: "\"") else { throw error(.expectedKey) }
        let key = try scanString()
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard bytes[index] == UInt8(ascii: ":") else { throw error(.expectedColon) }
        index += 1
        return key
    }

    /// Consumes the opening bracket or brace at `index`; false (with the closing one consumed too)
    /// when the container is empty.
    private mutating func openContainer(closing: UInt8) throws(JSONError) -> Bool {
        depth += 1
        guard depth <= JSONSyntax.maximumDepth else { throw error(.tooDeep) }
        index += 1
        skipWhitespace()
        guard index < bytes.count, bytes[index] == closing else { return true }
        index += 1
        depth -= 1
        return false
    }

    /// After a member: consumes `,` (true: another member follows) or `closing` (false).
    private mutating func nextMember(closing: UInt8) throws(JSONError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: ","):
            index += 1
            return true
        case closing:
            index += 1
            depth -= 1
            return false
        default:
            throw error(.expectedCommaOrEnd)
        }
    }

    // MARK: Bytes

    /// Requires the next value to be of `kind`; the reader is then at its first byte.
    mutating func expect(_ kind: JSONSyntax.Kind) throws(JSONError) {
        guard try nextKind() == kind else { throw error(.typeMismatch) }
    }

    /// Consumes `text` (a literal whose first byte is at `index`).
    mutating func literal(_ text: StaticString) throws(JSONError) {
        let count = text.utf8CodeUnitCount
        for offset in 0..<count {
            guard index + offset < bytes.count else { throw JSONError(.unexpectedEnd, at: index + offset) }
            guard bytes[index + offset] == text.utf8Start[offset] else { throw JSONError(.unexpectedByte, at: index + offset) }
        }
        index += count
    }

    mutating func skipWhitespace() {
        while index < bytes.count, JSONSyntax.isWhitespace(bytes[index]) { index += 1 }
    }

    func error(_ code: JSONError.Code) -> JSONError {
        JSONError(code, at: index)
    }
}

/// A reader points into bytes that live only during ``JSONReader/read(_:from:)``: it never
/// crosses to another task.
@available(*, unavailable)
extension JSONReader: Sendable {}
