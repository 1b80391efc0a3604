extension JSONValue {
    /// The compact JSON text of this value, byte for byte what `JSONEncoder` with
    /// `[.sortedKeys, .withoutEscapingSlashes]` wrote for it through its `Codable` conformance:
    ///
    /// - object keys in the byte order of their UTF-8 (what swift-foundation's `.sortedKeys`
    ///   uses), so the output is deterministic;
    /// - strings escaped as ``JSONString/Escaping/foundation``;
    /// - numbers as ``JSONWriter/number(_:)`` writes them;
    /// - arrays and objects nested ``JSONSyntax/maximumDepth`` (512) deep or more make the whole
    ///   output `null`, as `JSONEncoder`'s failure did.
    ///
    /// One difference: a non-finite number (which ``parse(_:)`` never produces) is written as
    /// `null` in its place, where `JSONEncoder` failed and the whole output became `null`.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter(escaping: .foundation)
        guard writer.write(self, depth: 0) else { return Array("null".utf8) }
        return writer.bytes
    }

    /// The compact JSON text of this value as a string (``serialized()``).
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// Whether `a` sorts before `b` comparing their UTF-8 bytes (`JSONEncoder`'s key order; not
    /// `String <`, which compares canonically equivalent forms).
    static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { a in b.withUTF8 { b in a.lexicographicallyPrecedes(b) } }
    }
}

extension JSONWriter {
    /// Writes `value` with its object keys sorted; false when containers nest
    /// ``JSONSyntax/maximumDepth`` deep (the output is then incomplete).
    mutating func write(_ value: JSONValue, depth: Int) -> Bool {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .number(let number): self.number(number)
        case .string(let text): string(text)
        case .array(let elements):
            guard depth + 1 < JSONSyntax.maximumDepth else { return false }
            beginArray()
            for element in elements {
                guard write(element, depth: depth + 1) else { return false }
            }
            endArray()
        case .object(let members):
            guard depth + 1 < JSONSyntax.maximumDepth else { return false }
            beginObject()
            for member in members.sorted(by: { JSONValue.utf8Precedes($0.key, $1.key) }) {
                key(member.key)
                guard write(member.value, depth: depth + 1) else { return false }
            }
            endObject()
        }
        return true
    }
}
