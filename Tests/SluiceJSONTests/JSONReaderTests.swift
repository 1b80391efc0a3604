import Foundation
import Testing
@testable import SluiceJSON

/// `JSONReader` reading typed values (what the stream accumulators decode chunks with), against
/// `JSONDecoder` reading the same Swift types through `Decodable`.
@Suite("JSONReader")
struct JSONReaderTests {
    /// A chunk-like type that reads itself both ways: `Decodable` for `JSONDecoder`, and
    /// ``JSONObjectReadable`` for the reader.
    struct Sample: Decodable, JSONObjectReadable, Equatable {
        var id: String?
        var index: Int?
        var score: Double?
        var flag: Bool?
        var items: [Item]?
        var tags: [String]?
        var extra: JSONValue?

        enum CodingKeys: String, CodingKey {
            case id, index, score, flag, items, tags
            case extra = "extra_value"
        }

        static let jsonMembers: JSONMembers<Self> = [
            "id": { $0.id = try $1.read() }, "index": { $0.index = try $1.read() }, "score": { $0.score = try $1.read() },
            "flag": { $0.flag = try $1.read() }, "items": { $0.items = try $1.read() }, "tags": { $0.tags = try $1.read() },
            "extra_value": { $0.extra = try $1.read() },
        ]
    }

    /// The elements of `Sample.items`.
    struct Item: Decodable, JSONObjectReadable, Equatable {
        var name: String?
        var count: Int?
        static let jsonMembers: JSONMembers<Self> = ["name": { $0.name = try $1.read() }, "count": { $0.count = try $1.read() }]
    }

    static let documents: [String] = [
        #"{}"#, #"{"id":"c1","index":0,"score":0.5,"flag":true,"items":[{"name":"a","count":2}],"tags":["x","y"]}"#,
        #"{"id":null,"index":null,"score":null,"flag":null,"items":null,"tags":null,"extra_value":null}"#,
        #"{"unknown":{"deep":[1,{"x":[null,"s\u00e9"]}]},"id":"k"}"#, #"{"extra_value":{"b":[1,2.5,"x",null,true]}}"#,
        #"{"index":3.0}"#, #"{"index":-0}"#, #"{"index":9223372036854775807}"#, #"{"index":-9223372036854775808}"#,
        #"{"index":9007199254740993}"#, #"{"score":1e-7,"index":12}"#, #"{"items":[]}"#, #"{"items":[{}]}"#,
        #"{"\u0069d":"escaped key"}"#, " \n{ \"id\" : \"spaced\" } \t",
        // Type mismatches JSONDecoder rejects too.
        #"{"id":5}"#, #"{"id":true}"#, #"{"id":["a"]}"#, #"{"index":"3"}"#, #"{"index":3.5}"#, #"{"index":1e400}"#,
        #"{"index":9223372036854775808}"#, #"{"index":-9223372036854775809}"#, #"{"score":"0.5"}"#, #"{"flag":1}"#,
        #"{"flag":"true"}"#, #"{"items":{}}"#, #"{"items":[null]}"#, #"{"items":[1]}"#, #"{"tags":[null]}"#,
        #"{"tags":"x"}"#, #"{"items":[{"count":"2"}]}"#, "[]", "null", "1", #""s""#,
        // Malformed.
        "", "{", #"{"id":"a"} x"#, #"{"id":"\x"}"#, #"{"id":"a" "index":1}"#,
    ]

    @Test func readsWhatJSONDecoderReads() {
        for document in Self.documents {
            let bytes = Array(document.utf8)
            let legacy = try? JSONDecoder().decode(Sample.self, from: Data(bytes))
            let read = try? JSONReader.read(Sample.self, from: bytes)
            #expect(read == legacy, "\(document)")
        }
    }

    /// Documents `JSONDecoder` accepted and the strict grammar rejects: trailing commas, and
    /// malformed numbers in members nobody reads (`JSONDecoder` did not check them).
    @Test func strictWhereJSONDecoderWasLenient() {
        for document in [#"{"id":"a",}"#, #"{"unknown":[1,]}"#, #"{"unknown":01}"#, #"{"unknown":-}"#] {
            let bytes = Array(document.utf8)
            #expect((try? JSONDecoder().decode(Sample.self, from: Data(bytes))) != nil, "\(document)")
            #expect(throws: JSONError.self, "\(document)") { try JSONReader.read(Sample.self, from: bytes) }
        }
    }

    @Test func integersAreExactAndInRange() throws {
        func int(_ text: String) throws(JSONError) -> Int { try JSONReader.read(Int.self, from: Array(text.utf8)) }
        #expect(try int("0") == 0)
        #expect(try int("-0") == 0)
        #expect(try int("42") == 42)
        #expect(try int("4.2e1") == 42)
        #expect(try int("42.000") == 42)
        #expect(try int("9223372036854775807") == .max)
        #expect(try int("-9223372036854775808") == .min)
        #expect(try int("9007199254740993") == 9_007_199_254_740_993)
        #expect(throws: JSONError(.typeMismatch, at: 1)) { try int(" 4.5") }
        #expect(throws: JSONError(.typeMismatch, at: 0)) { try int("9223372036854775808") }
        #expect(throws: JSONError(.typeMismatch, at: 0)) { try int("1e19") }
        #expect(throws: JSONError(.numberOutOfRange, at: 0)) { try int("1e400") }
        #expect(throws: JSONError(.typeMismatch, at: 0)) { try int(#""1""#) }
    }

    @Test func typeMismatchIsReportedAtTheValue() {
        #expect(throws: JSONError(.typeMismatch, at: 7)) { try JSONReader.read(Sample.self, from: Array(#"{"id": 5}"#.utf8)) }
        #expect(throws: JSONError(.typeMismatch, at: 0)) { try JSONReader.read(String.self, from: Array("null".utf8)) }
        #expect(throws: JSONError(.typeMismatch, at: 0)) { try JSONReader.read([Int].self, from: Array("{}".utf8)) }
        // Syntax errors win over the expected type.
        #expect(throws: JSONError(.unexpectedByte, at: 0)) { try JSONReader.read(String.self, from: Array("x".utf8)) }
        #expect(throws: JSONError(.unexpectedEnd, at: 1)) { try JSONReader.read(String.self, from: Array(" ".utf8)) }
    }

    @Test func keysMatchLiteralsWithEscapesDecoded() throws {
        var seen: [String] = []
        let document = Array(#"{"plain":1,"\u0070lain":2,"caf\u00e9":3,"café":4,"":5,"\"q\"":6}"#.utf8)
        try JSONReader.document(document) { reader throws(JSONError) in
            try reader.readObject { key, reader throws(JSONError) in
                switch key {
                case "plain": seen.append("plain")
                case "café": seen.append("café")
                case "": seen.append("empty")
                default: seen.append("other \(key.string)")
                }
                try reader.skipValue()
            }
        }
        #expect(seen == ["plain", "plain", "café", "café", "empty", "other \"q\""])
    }

    @Test func readNullConsumesOnlyNull() throws {
        let values = try JSONReader.document(Array("[null, 1]".utf8)) { reader throws(JSONError) in
            var values: [Bool] = []
            try reader.readArray { reader throws(JSONError) in
                values.append(try reader.readNull())
                if !values.last! { _ = try reader.readInt() }
            }
            return values
        }
        #expect(values == [true, false])
    }

    @Test func nextKindAndOffset() throws {
        let kinds = try JSONReader.document(Array(#" [{}, [], "s", -1, true, false, null]"#.utf8)) { reader throws(JSONError) in
            var kinds: [JSONSyntax.Kind] = []
            #expect(reader.offset == 0)
            try reader.readArray { reader throws(JSONError) in
                kinds.append(try reader.nextKind())
                try reader.skipValue()
            }
            return kinds
        }
        #expect(kinds == [.object, .array, .string, .number, .bool, .bool, .null])
    }

    @Test func errorsNeverQuoteTheInput() {
        let secret = #"{"api_key":"sk-very-secret","x":tru}"#
        do {
            _ = try JSONValue.parse(Array(secret.utf8))
            Issue.record("parsed")
        } catch {
            #expect("\(error)" == "invalid JSON at byte 35: unexpected byte")
            #expect(error.code == .unexpectedByte)
            #expect(error.offset == 35)
        }
    }

    @Test func codesDescribeThemselves() {
        let codes: [JSONError.Code] = [
            .unexpectedEnd, .unexpectedByte, .expectedKey, .expectedColon, .expectedCommaOrEnd, .invalidNumber,
            .numberOutOfRange, .invalidEscape, .loneSurrogate, .controlCharacter, .invalidUTF8, .tooDeep, .trailingData,
            .typeMismatch,
        ]
        #expect(Set(codes).count == codes.count)
        #expect(Set(codes.map(\.description)).count == codes.count)
        #expect(Set(codes.map(\.reason)).count == codes.count)
        #expect(JSONError.Code.typeMismatch.description == "typeMismatch")
        #expect(JSONError.Code.typeMismatch.reason == "a value of another type than expected")
        #expect(String(reflecting: JSONError(.trailingData, at: 3)) == "JSONError(code: trailingData, offset: 3)")
    }
}
