import Foundation
import Testing
@testable import SluiceJSON

/// `JSONValue.parse` and `serialized()` against the `JSONDecoder`/`JSONEncoder` path they
/// replaced (still reachable through `JSONValue`'s `Codable` conformance), and `JSONSyntax`
/// against the parser.
@Suite("JSONValue parser and writer")
struct JSONValueParserTests {
    // MARK: The old Codable path

    /// What `JSONValue.parse` returned before: `JSONDecoder` through the `Codable` conformance.
    static func legacyParse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// What `serialized()` returned before.
    static func legacySerialize(_ value: JSONValue) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? Array("null".utf8)
    }

    /// Structural equality that also tells `-0` from `0` and compares numbers bit for bit.
    static func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x.bitPattern == y.bitPattern
        case (.string(let x), .string(let y)): Array(x.utf8) == Array(y.utf8)
        case (.array(let x), .array(let y)): x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
        case (.object(let x), .object(let y)):
            x.count == y.count && x.allSatisfy { key, value in y[key].map { identical(value, $0) } ?? false }
        default: false
        }
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: Valid documents

    static let validDocuments: [String] = [
        "null", "true", "false", "0", "-0", "1", "-1", "0.1", "-0.5", "1e308", "5e-324", "-5e-324",
        "1.7976931348623157e308", "2.2250738585072014e-308", "123456789012345678", "9007199254740993",
        "1e23", "1E5", "1e+5", "1.5e-3", "0e-400", "-0.0e0", "0.30000000000000004", "3e-324",
        "100000000000000000000000000000000000000000", "0.00000000000000000000000000000000000000000000001",
        "1234567890.0987654321", "8999999999999999", "9000000000000000", "9000000000000001", "1e16",
        #""""#, #""hello""#, #"" spaces  and\ttabs escaped\n""#, #""\"\\\/\b\f\n\r\t""#,
        #""\u0000\u001f\u007f\u0080\u00e9\u2028\u2029\uFFFF""#, #""\ud83d\ude00 \uD834\uDD1E""#,
        "\"é 😀 日本語 e\u{301}\"", "\"\u{7F}\"", #""<a href=\"http://x/y\">""#,
        "[]", "{}", "[[]]", "[{}]", "{\"a\":[]}", " \t\r\n[ 1 , 2 ,\n3 ] \n",
        #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi \"there\"\n"}],"max_tokens":256,"temperature":0.7,"stream":true,"stop":null}"#,
        #"{"B":1,"a":2,"é":3,"aa":4,"e\u0301x":5,"f":6,"😀":7,"\uffff":8,"":9}"#,
        #"{"nested":{"deeper":{"deepest":[1,[2,[3,{"x":null}]]]}},"list":[true,false,null,-1.25e-7]}"#,
        #"{"a":{"b":{"c":{"d":{"e":{"f":{"g":"h"}}}}}}}"#,
        "[" + (0..<2000).map { "\($0 * 7919 % 1000003).\($0 % 97)" }.joined(separator: ",") + "]",
        "{" + (0..<500).map { "\"key\($0)\":{\"v\":[\($0),\"s\($0)\",\($0 % 2 == 0)]}" }.joined(separator: ",") + "}",
        String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
        String(repeating: "{\"a\":", count: 512) + "1" + String(repeating: "}", count: 512),
    ]

    @Test func validDocumentsParseAsJSONDecoderDid() throws {
        for document in Self.validDocuments {
            let bytes = Array(document.utf8)
            let parsed = try JSONValue.parse(bytes)
            let legacy = try Self.legacyParse(bytes)
            #expect(Self.identical(parsed, legacy), "\(document.prefix(200))")
            #expect(JSONSyntax.isValid(bytes), "\(document.prefix(200))")
        }
    }

    @Test func validDocumentsSerializeAsJSONEncoderDid() throws {
        for document in Self.validDocuments {
            let value = try JSONValue.parse(Array(document.utf8))
            let serialized = value.serialized()
            let legacy = Self.legacySerialize(value)
            #expect(Self.text(serialized) == Self.text(legacy), "\(document.prefix(200))")
        }
    }

    @Test func everyInputKindParsesTheSame() throws {
        let document = #"{"a":[1,"x\u00e9",null],"b":{"c":true}}"#
        let bytes = Array(document.utf8)
        let expected = try JSONValue.parse(bytes)
        #expect(try JSONValue.parse(Data(bytes)) == expected)
        #expect(try JSONValue.parse(([0x20] + bytes + [0x20])[1..<bytes.count + 1]) == expected)
        #expect(try JSONValue.parse(Data([0x5B] + bytes + [0x5D]).dropFirst().dropLast()) == expected)
        #expect(try JSONValue.parse(bytes.lazy.map { $0 }) == expected)  // not contiguous: copied
        #expect(try JSONValue.parse(document.utf8) == expected)
        #expect(JSONSyntax.isValid(bytes.lazy.map { $0 }))
        #expect(!JSONSyntax.isValid(bytes.dropLast().lazy.map { $0 }))
    }

    @Test func examples() throws {
        #expect(try JSONValue.parse(Array(#" {"a" : [1, -2.5e1, "x"], "b": null} "#.utf8))
            == .object(["a": .array([.number(1), .number(-25), .string("x")]), "b": .null]))
        #expect(try JSONValue.parse(Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
        #expect(try JSONValue.parse(Array(#""a\u0000b""#.utf8)) == .string("a\u{0}b"))
        #expect(try JSONValue.parse(Array("-0".utf8)).doubleValue?.sign == .minus)
        #expect(try JSONValue.parse(Array("123456789012345678".utf8)) == .number(123456789012345678))
    }

    // MARK: Deliberate differences from JSONDecoder

    @Test func duplicateKeysLastOneWins() throws {
        #expect(try JSONValue.parse(Array(#"{"a":1,"b":0,"a":2}"#.utf8)) == .object(["a": .number(2), "b": .number(0)]))
        // JSONDecoder kept the first one.
        #expect(try Self.legacyParse(Array(#"{"a":1,"a":2}"#.utf8)) == .object(["a": .number(1)]))
    }

    /// Documents JSONDecoder accepted and the strict parser rejects.
    static let acceptedByJSONDecoder = ["[1,]", #"{"a":1,}"#, "\u{FEFF}1"]

    @Test func trailingCommasAndByteOrderMarkAreRejected() throws {
        for document in Self.acceptedByJSONDecoder {
            #expect(throws: JSONError.self) { try JSONValue.parse(Array(document.utf8)) }
            #expect(!JSONSyntax.isValid(Array(document.utf8)))
            // JSONDecoder accepted them.
            #expect((try? Self.legacyParse(Array(document.utf8))) != nil)
        }
    }

    // MARK: Invalid documents

    /// Documents both the parser and `JSONSyntax` reject, with the parser's code and offset.
    static let invalidDocuments: [([UInt8], JSONError.Code, Int)] = [
        (Array("".utf8), .unexpectedEnd, 0),
        (Array("   ".utf8), .unexpectedEnd, 3),
        (Array("[1,2".utf8), .unexpectedEnd, 4),
        (Array(#"{"a":"#.utf8), .unexpectedEnd, 5),
        (Array(#"{"a""#.utf8), .unexpectedEnd, 4),
        (Array(#""abc"#.utf8), .unexpectedEnd, 4),
        (Array(#""ab\"#.utf8), .unexpectedEnd, 4),
        (Array("tru".utf8), .unexpectedEnd, 3),
        (Array("nul".utf8), .unexpectedEnd, 3),
        (Array("[1,]".utf8), .unexpectedByte, 3),
        (Array("[,1]".utf8), .unexpectedByte, 1),
        (Array("[1,,2]".utf8), .unexpectedByte, 3),
        (Array(#"{"a":1,}"#.utf8), .expectedKey, 7),
        (Array("{,}".utf8), .expectedKey, 1),
        (Array("{1:2}".utf8), .expectedKey, 1),
        (Array(#"{"a" 1}"#.utf8), .expectedColon, 5),
        (Array("[1 2]".utf8), .expectedCommaOrEnd, 3),
        (Array(#"{"a":1 "b":2}"#.utf8), .expectedCommaOrEnd, 7),
        (Array("[1]x".utf8), .trailingData, 3),
        (Array("1 2".utf8), .trailingData, 2),
        (Array("{} {}".utf8), .trailingData, 3),
        (Array("[1]\u{0}".utf8), .trailingData, 3),
        (Array("trUe".utf8), .unexpectedByte, 2),
        (Array("nan".utf8), .unexpectedByte, 1),
        (Array("NaN".utf8), .unexpectedByte, 0),
        (Array("Infinity".utf8), .unexpectedByte, 0),
        (Array("-Infinity".utf8), .invalidNumber, 1),
        (Array("+1".utf8), .unexpectedByte, 0),
        (Array(".5".utf8), .unexpectedByte, 0),
        (Array("01".utf8), .invalidNumber, 1),
        (Array("-01".utf8), .invalidNumber, 2),
        (Array("00".utf8), .invalidNumber, 1),
        (Array("[012]".utf8), .invalidNumber, 2),
        (Array("1.".utf8), .unexpectedEnd, 2),
        (Array("1.e5".utf8), .invalidNumber, 2),
        (Array("1e".utf8), .unexpectedEnd, 2),
        (Array("1e+".utf8), .unexpectedEnd, 3),
        (Array("1e+x".utf8), .invalidNumber, 3),
        (Array("-".utf8), .unexpectedEnd, 1),
        (Array("-a".utf8), .invalidNumber, 1),
        (Array("0x10".utf8), .trailingData, 1),
        (Array("1e400".utf8), .numberOutOfRange, 0),
        (Array("-1e400".utf8), .numberOutOfRange, 0),
        (Array("[1e-400]".utf8), .numberOutOfRange, 1),
        (Array("2e-324".utf8), .numberOutOfRange, 0),
        (Array("1.7976931348623159e308".utf8), .numberOutOfRange, 0),
        (Array((String(repeating: "9", count: 400)).utf8), .numberOutOfRange, 0),
        (Array(("0." + String(repeating: "0", count: 400) + "1").utf8), .numberOutOfRange, 0),
        (Array(#""\x""#.utf8), .invalidEscape, 1),
        (Array(#""\'""#.utf8), .invalidEscape, 1),
        (Array(#""\U0041""#.utf8), .invalidEscape, 1),
        (Array(#""\u12""#.utf8), .invalidEscape, 1),
        (Array(#""\u00zz""#.utf8), .invalidEscape, 1),
        (Array(#""\ud800""#.utf8), .loneSurrogate, 1),
        (Array(#""\ud800x""#.utf8), .loneSurrogate, 1),
        (Array(#""\udc00""#.utf8), .loneSurrogate, 1),
        (Array(#""\ude00\ud83d""#.utf8), .loneSurrogate, 1),
        (Array(#""a\ud800\u0041""#.utf8), .loneSurrogate, 2),
        (Array(#""\ud800\ud800""#.utf8), .loneSurrogate, 1),
        (Array(#""\ud800\u12""#.utf8), .invalidEscape, 7),
        (Array("\"a\u{1}\"".utf8), .controlCharacter, 2),
        (Array("\"\t\"".utf8), .controlCharacter, 1),
        (Array("\"line\nbreak\"".utf8), .controlCharacter, 5),
        (Array("\"\\n\u{1F}\"".utf8), .controlCharacter, 3),
        (Array("\u{0B}1".utf8), .unexpectedByte, 0),
        (Array("\u{0C}1".utf8), .unexpectedByte, 0),
        (Array("\u{A0}1".utf8), .unexpectedByte, 0),
        (Array("\u{FEFF}1".utf8), .unexpectedByte, 0),
        ([0xFF], .unexpectedByte, 0),
        ([0x5B, 0x31, 0x2C, 0xC3, 0xA9, 0x5D], .unexpectedByte, 3),
        ([0x22, 0xFF, 0x22], .invalidUTF8, 0),
        ([0x20, 0x22, 0xC0, 0x80, 0x22], .invalidUTF8, 1),
        ([0x22, 0xC3, 0x22], .invalidUTF8, 0),
        ([0x22, 0xE2, 0x82, 0x22], .invalidUTF8, 0),
        ([0x22, 0xE0, 0x80, 0x80, 0x22], .invalidUTF8, 0),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], .invalidUTF8, 0),
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .invalidUTF8, 0),
        ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], .invalidUTF8, 0),
        ([0x22, 0x80, 0x22], .invalidUTF8, 0),
        ([0x22, 0x5C, 0x6E, 0xC3, 0x5C, 0x6E, 0x22], .invalidUTF8, 0),
        ([0x22, 0xC3, 0x5C, 0x75, 0x30, 0x30, 0x41, 0x39, 0x22], .invalidUTF8, 0),
        (Array((String(repeating: "[", count: 513) + String(repeating: "]", count: 513)).utf8), .tooDeep, 512),
        (Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8), .tooDeep, 512),
        (Array((String(repeating: "{\"a\":", count: 513) + "1" + String(repeating: "}", count: 513)).utf8), .tooDeep, 512 * 5),
    ]

    @Test func invalidDocumentsAreRejected() throws {
        for (bytes, code, offset) in Self.invalidDocuments {
            let label = Self.text(Array(bytes.prefix(60)))
            #expect(throws: JSONError(code, at: offset), "\(label)") { try JSONValue.parse(bytes) }
            #expect(!JSONSyntax.isValid(bytes), "\(label)")
        }
    }

    @Test func invalidDocumentsWereRejectedByJSONDecoderToo() {
        // Apart from the deliberate differences above, the old path rejected the same documents.
        let differences = Set(Self.acceptedByJSONDecoder.map { Array($0.utf8) })
        for (bytes, _, _) in Self.invalidDocuments where !differences.contains(bytes) {
            #expect((try? Self.legacyParse(bytes)) == nil, "\(Self.text(Array(bytes.prefix(60))))")
        }
    }

    @Test func errorDescriptionHasOffsetAndCode() {
        #expect("\(JSONError(.trailingData, at: 3))" == "invalid JSON at byte 3: data after the JSON value")
    }

    // MARK: Numbers

    /// Numeric literals of every shape, against the old decoder's conversion (bit for bit).
    @Test func numbersConvertLikeJSONDecoder() throws {
        var generator = SeededGenerator(seed: 0x5EED_0001)
        var literals: [String] = []
        for _ in 0..<4000 {
            let double = Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF)  // finite, positive
            literals.append("\(double)")
            literals.append(String(format: "%.17g", double))
            literals.append(String(format: "%.3e", double))
        }
        for _ in 0..<6000 {
            let digits = (0..<Int.random(in: 1...24, using: &generator)).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            let trimmed = digits.drop { $0 == "0" }
            let integer = trimmed.isEmpty ? "0" : String(trimmed)
            var literal = (Bool.random(using: &generator) ? "-" : "") + integer
            if Bool.random(using: &generator) {
                literal += "." + (0..<Int.random(in: 1...20, using: &generator)).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            }
            if Bool.random(using: &generator) {
                literal += ["e", "E", "e+", "e-", "E-"].randomElement(using: &generator)! + String(Int.random(in: 0...40, using: &generator))
            }
            literals.append(literal)
        }
        for exponent in -30...30 {
            literals += ["1e\(exponent)", "9007199254740993e\(exponent)", "123.456e\(exponent)", "0.1e\(exponent)", "4.35e\(exponent)"]
        }
        var checked = 0
        for literal in literals {
            let bytes = Array(literal.utf8)
            guard let legacy = try? Self.legacyParse(bytes) else {
                // Out of range for a Double: both reject.
                #expect(throws: JSONError.self, "\(literal)") { try JSONValue.parse(bytes) }
                continue
            }
            let parsed = try JSONValue.parse(bytes)
            #expect(Self.identical(parsed, legacy), "\(literal)")
            #expect(JSONSyntax.isValid(bytes), "\(literal)")
            checked += 1
        }
        #expect(checked > 15_000)
    }

    @Test func numbersSerializeLikeJSONEncoder() {
        var generator = SeededGenerator(seed: 0x5EED_0002)
        var numbers: [Double] = [0, -0.0, 1, -1, 0.1, 0.5, 1e15, 8.999999999999999e15, 9e15, -9e15, 9e15 + 1, 1e16, 1e20, 1e21,
                                 1e22, 1e23, 1e308, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                                 1e-7, 1e-5, 0.0001, 123456789012345678, 1e15 + 0.5, 2.5, -2.5e-300]
        for _ in 0..<5000 {
            numbers.append(Double(bitPattern: generator.next()))
            numbers.append(Double(Int64.random(in: -10_000_000_000_000_000...10_000_000_000_000_000, using: &generator)))
            numbers.append(Double(Int.random(in: -100_000...100_000, using: &generator)) / 100)
        }
        for number in numbers where number.isFinite {
            let value = JSONValue.array([.number(number)])
            #expect(Self.text(value.serialized()) == Self.text(Self.legacySerialize(value)), "\(number)")
        }
    }

    @Test func nonFiniteNumbersAreWrittenAsNull() {
        // JSONEncoder threw, and serialized() returned "null" for the whole value.
        #expect(Self.text(JSONValue.array([.number(.infinity), .number(1)]).serialized()) == "[null,1]")
        #expect(Self.text(JSONValue.object(["a": .number(.nan)]).serialized()) == #"{"a":null}"#)
        #expect(Self.text(Self.legacySerialize(.array([.number(.infinity)]))) == "null")
    }

    // MARK: Strings and keys

    @Test func keysSortByUTF8Bytes() {
        let keys = ["B", "a", "é", "aa", "e\u{301}x", "f", "😀", "\u{FFFF}", "", "a10", "a9", "_", "Z", "aB", "ab"]
        let value = JSONValue.object(Dictionary(uniqueKeysWithValues: keys.map { ($0, JSONValue.null) }))
        let expected = #"{"":null,"B":null,"Z":null,"_":null,"a":null,"a10":null,"a9":null,"aB":null,"aa":null,"ab":null,"#
            + "\"e\u{301}x\":null,\"f\":null,\"é\":null,\"\u{FFFF}\":null,\"😀\":null}"
        #expect(Self.text(value.serialized()) == expected)
        #expect(Self.text(Self.legacySerialize(value)) == expected)
    }

    @Test func stringEscapesMatchJSONEncoder() {
        var string = ""
        for scalar in 0..<0x80 { string.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        string += "/é\u{2028}\u{2029}\u{FFFF}😀\u{10FFFF}"
        let value = JSONValue.object([string: .string(string)])
        #expect(Self.text(value.serialized()) == Self.text(Self.legacySerialize(value)))
        #expect(Self.text(JSONValue.string("a\"b\\c/d\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{7F}").serialized())
            == #""a\"b\\c/d\b\f\n\r\t\u0000\u001f"# + "\u{7F}\"")
    }

    @Test func nestingLimitOfTheWriterMatchesJSONEncoder() {
        for depth in [510, 511, 512, 513] {
            var array = JSONValue.null
            var object = JSONValue.null
            for _ in 0..<depth {
                array = .array([array])
                object = .object(["k": object])
            }
            #expect(array.serialized() == Self.legacySerialize(array), "\(depth)")
            #expect(object.serialized() == Self.legacySerialize(object), "\(depth)")
            #expect((array.serialized() == Array("null".utf8)) == (depth >= 512))
        }
    }

    // MARK: Random documents

    /// Random trees: serialized as JSONEncoder did, and parse back to the same value.
    @Test func randomValuesRoundTrip() throws {
        var generator = SeededGenerator(seed: 0x5EED_0003)
        for round in 0..<400 {
            let value = RandomJSON.value(depth: 0, maxDepth: round % 7 + 1, using: &generator)
            let bytes = value.serialized()
            #expect(Self.text(bytes) == Self.text(Self.legacySerialize(value)), "round \(round)")
            let parsed = try JSONValue.parse(bytes)
            #expect(Self.identical(parsed, value.normalizedNegativeZero), "round \(round): \(Self.text(bytes).prefix(300))")
            #expect(JSONSyntax.isValid(bytes))
            #expect(try Self.identical(Self.legacyParse(bytes), parsed))
        }
    }

    /// Random single-byte edits of valid documents: `JSONSyntax` agrees with the parser on every one.
    @Test func validatorAgreesWithParserOnMutations() {
        var generator = SeededGenerator(seed: 0x5EED_0004)
        let interesting: [UInt8] = Array(#"{}[]",:\/"-+.0123456789eEtfnu "#.utf8) + [0x00, 0x09, 0x0A, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xED, 0xF0, 0xFF]
        var documents = Self.validDocuments.filter { $0.utf8.count < 400 }.map { Array($0.utf8) }
        for _ in 0..<50 { documents.append(RandomJSON.value(depth: 0, maxDepth: 4, using: &generator).serialized()) }
        var accepted = 0, rejected = 0
        for document in documents {
            for _ in 0..<60 {
                var mutated = document
                let position = Int.random(in: 0...mutated.count, using: &generator)
                let byte = interesting.randomElement(using: &generator)!
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where position < mutated.count: mutated[position] = byte
                case 1 where position < mutated.count: mutated.remove(at: position)
                default: mutated.insert(byte, at: position)
                }
                let parses = (try? JSONValue.parse(mutated)) != nil
                #expect(JSONSyntax.isValid(mutated) == parses, "\(Self.text(mutated).prefix(200))")
                if parses { accepted += 1 } else { rejected += 1 }
            }
        }
        // The mutations exercise both outcomes.
        #expect(accepted > 500 && rejected > 500)
    }
}

/// SplitMix64: a small deterministic generator for reproducible random tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random `JSONValue` trees with awkward strings, keys and numbers.
enum RandomJSON {
    static let alphabet: [String] = ["a", "B", "z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{8}", "\u{C}", "\u{1F}",
                                     "\u{7F}", "é", "e\u{301}", "ß", "日", "\u{2028}", "\u{FFFF}", "😀", "\u{10FFFF}", "{", "]", ":", ","]

    static func string(using generator: inout SeededGenerator) -> String {
        (0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
    }

    static func number(using generator: inout SeededGenerator) -> Double {
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: Double(Int.random(in: -1000...1000, using: &generator))
        case 1: Double(Int64.random(in: -9_100_000_000_000_000...9_100_000_000_000_000, using: &generator))
        case 2: Double.random(in: -1...1, using: &generator)
        case 3: Double(Int.random(in: -99_999...99_999, using: &generator)) / 1000
        case 4: -0.0
        default:
            // Any finite double.
            Double(bitPattern: generator.next() & 0xFFEF_FFFF_FFFF_FFFF)
        }
    }

    static func value(depth: Int, maxDepth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let kind = depth >= maxDepth ? Int.random(in: 0..<4, using: &generator) : Int.random(in: 0..<6, using: &generator)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .number(number(using: &generator))
        case 3: return .string(string(using: &generator))
        case 4:
            return .array((0..<Int.random(in: 0...6, using: &generator)).map { _ in value(depth: depth + 1, maxDepth: maxDepth, using: &generator) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                members[string(using: &generator)] = value(depth: depth + 1, maxDepth: maxDepth, using: &generator)
            }
            return .object(members)
        }
    }
}

extension JSONValue {
    /// The value as it comes back from its JSON text: `-0` is written as `0`.
    var normalizedNegativeZero: JSONValue {
        switch self {
        case .number(let number) where number == 0: .number(0)
        case .array(let elements): .array(elements.map(\.normalizedNegativeZero))
        case .object(let members): .object(members.mapValues(\.normalizedNegativeZero))
        default: self
        }
    }
}
