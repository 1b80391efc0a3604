import Foundation
import SluiceJSON
import Testing

/// `JSONSyntax.isValid` on its own (its agreement with `JSONValue.parse` is checked in
/// JSONValueParserTests).
@Suite("JSONSyntax")
struct JSONSyntaxTests {
    static func valid(_ text: String) -> Bool { JSONSyntax.isValid(Array(text.utf8)) }

    @Test(arguments: [
        "null", "true", "false", "0", "-0", "-0.0e-0", "1E+2", "0.5", "1e308", "5e-324", "0e-999", "123456789012345678901234567890",
        #""""#, #""\"\\\/\b\f\n\r\t\u0041\u00e9\uD83D\uDE00""#, "\"é😀\u{7F}\"", "[]", "{}", " [ 1 , { \"a\" : [ ] } ] ",
        "\t\r\n{\"a\":{\"b\":[null,true,false,\"x\"]},\"a\":2}\n",
    ])
    func validDocuments(_ text: String) {
        #expect(Self.valid(text))
    }

    @Test(arguments: [
        "", " ", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{1:2}", "[1]x", "1 2", "\u{FEFF}1", "\u{0B}1", "nul", "trUe",
        "01", "-01", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "NaN", "Infinity", "1e400", "-1e400", "1e-400",
        "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{1}\"", "\"\t\"", "\"abc", "[", "{\"a\":",
    ])
    func invalidDocuments(_ text: String) {
        #expect(!Self.valid(text))
    }

    @Test func utf8FollowsTheUnicodeTable() {
        func string(_ bytes: [UInt8]) -> Bool { JSONSyntax.isValid([0x22] + bytes + [0x22]) }
        // The boundaries of each well-formed range.
        for bytes: [UInt8] in [[0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xEC, 0xBF, 0xBF], [0xED, 0x9F, 0xBF],
                               [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF3, 0xBF, 0xBF, 0xBF],
                               [0xF4, 0x8F, 0xBF, 0xBF]] {
            #expect(string(bytes), "\(bytes)")
        }
        // Overlong forms, surrogates, beyond U+10FFFF, stray or missing continuation bytes.
        for bytes: [UInt8] in [[0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
                               [0xF0, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0x80],
                               [0xBF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x41, 0x82]] {
            #expect(!string(bytes), "\(bytes)")
        }
        // Non-ASCII bytes outside strings.
        #expect(!JSONSyntax.isValid([0x5B, 0xC3, 0xA9, 0x5D]))
    }

    @Test func nestingIsLimitedTo512() {
        for depth in [1, 511, 512, 513, 600] {
            let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let objects = String(repeating: "{\"k\":", count: depth) + "0" + String(repeating: "}", count: depth)
            #expect(Self.valid(arrays) == (depth <= JSONSyntax.maximumDepth), "\(depth)")
            #expect(Self.valid(objects) == (depth <= JSONSyntax.maximumDepth), "\(depth)")
        }
        // Depth counts open containers, not siblings.
        let siblings = "[" + Array(repeating: String(repeating: "[", count: 500) + String(repeating: "]", count: 500), count: 3).joined(separator: ",") + "]"
        #expect(Self.valid(siblings))
    }

    @Test func anyCollectionOfBytes() {
        let bytes = Array(#"{"a":[1,2,{"b":"c"}]}"#.utf8)
        #expect(JSONSyntax.isValid(bytes))
        #expect(JSONSyntax.isValid(Data(bytes)))
        #expect(JSONSyntax.isValid(([0x20] + bytes + [0x5D])[0..<bytes.count + 1]))
        #expect(!JSONSyntax.isValid(([0x20] + bytes + [0x5D])[...]))
        #expect(JSONSyntax.isValid(bytes.lazy.map { $0 }))
        #expect(!JSONSyntax.isValid(bytes.dropLast().lazy.map { $0 }))
    }

    @Test func everyTruncationOfADocumentIsInvalid() {
        let bytes = Array(#"{"model":"m","messages":[{"role":"user","content":"h\u00e9\"llo 😀"}],"n":-1.5e-3,"s":true,"x":null}"#.utf8)
        #expect(JSONSyntax.isValid(bytes))
        for length in 0..<bytes.count {
            #expect(!JSONSyntax.isValid(bytes[0..<length]), "\(length)")
        }
    }

    @Test func kindNamesTheTopLevelValueOfValidDocumentsOnly() {
        func kind(_ text: String) -> JSONSyntax.Kind? { JSONSyntax.kind(Array(text.utf8)) }
        #expect(kind(" \r\n\t{\"a\":1}") == .object)
        #expect(kind("[1]") == .array)
        #expect(kind("\"x\"") == .string)
        #expect(kind("-1.5") == .number)
        #expect(kind("false") == .bool)
        #expect(kind("null") == .null)
        #expect(kind("{\"a\":1,}") == nil)
        #expect(kind("{} {}") == nil)
        #expect(kind("") == nil)
    }
}
