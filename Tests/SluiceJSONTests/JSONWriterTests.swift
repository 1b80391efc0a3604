import Testing
@testable import SluiceJSON

/// `JSONWriter` and `JSONString`: the text Sluice sends to PostgreSQL, prints, and the mock
/// provider serves.
@Suite("JSONWriter")
struct JSONWriterTests {
    static func text(_ writer: JSONWriter) -> String { String(decoding: writer.bytes, as: UTF8.self) }

    @Test func buildsNestedDocuments() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("s", "a\"b")
        writer.field("missing", nil as String?)
        writer.field("i", -12)
        writer.field("d", 1.0)
        writer.field("tiny", 1.5e-05)
        writer.field("b", false)
        writer.field("raw", raw: Array(#"{"x":[1]}"#.utf8))
        writer.key("list")
        writer.beginArray()
        writer.int(1)
        writer.null()
        writer.double(.nan)
        writer.number(2.0)
        writer.number(0.1)
        writer.beginObject()
        writer.endObject()
        writer.endArray()
        writer.endObject()
        #expect(Self.text(writer) == #"{"s":"a\"b","i":-12,"d":1.0,"tiny":1.5e-05,"b":false,"raw":{"x":[1]},"list":[1,null,null,2,0.1,{}]}"#)
    }

    @Test func basicEscapingSpellsControlsAsUnicodeEscapes() {
        var all = ""
        for scalar in 0..<0x80 { all.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        all += "é😀\u{2028}"
        // The rule the mock provider's own quoting followed, scalar by scalar.
        var expected = "\""
        for scalar in all.unicodeScalars {
            switch scalar {
            case "\"": expected += "\\\""
            case "\\": expected += "\\\\"
            case "\n": expected += "\\n"
            case "\r": expected += "\\r"
            case "\t": expected += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                expected += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: expected.unicodeScalars.append(scalar)
            }
        }
        expected += "\""
        #expect(JSONString.quoted(all) == expected)
        var writer = JSONWriter()
        writer.string(all)
        #expect(Self.text(writer) == expected)
    }

    @Test func foundationEscapingAddsBackspaceAndFormFeed() {
        let text = "\u{8}\u{C}\n\u{1}/"
        #expect(JSONString.quoted(text) == #""\u0008\u000c\n\u0001/""#)
        #expect(JSONString.quoted(text, escaping: .foundation) == #""\b\f\n\u0001/""#)
        #expect(JSONString.quotedOrNull(nil) == "null")
        #expect(JSONString.quotedOrNull("x") == #""x""#)
    }
}
