import Testing
@testable import SluiceProviders

@Suite("SSE parser")
struct SSEParserTests {
    /// Feeds `text` split at every position given, collecting events.
    func parse(_ text: String, splitAt splits: [Int] = [], configuration: SSEParser.Configuration = .init()) throws -> [SSEEvent] {
        var parser = SSEParser(configuration: configuration)
        let bytes = Array(text.utf8)
        var events: [SSEEvent] = []
        var start = 0
        for split in splits + [bytes.count] where split >= start {
            events += try parser.feed(Array(bytes[start..<split]))
            start = split
        }
        return events
    }

    @Test func dataAndDefaultType() throws {
        let events = try parse("data: hello\n\n")
        #expect(events == [SSEEvent(type: "message", data: "hello")])
    }

    @Test func multiLineDataJoinedWithNewline() throws {
        let events = try parse("data: a\ndata: b\ndata:\n\n")
        #expect(events.map(\.data) == ["a\nb\n"])
    }

    @Test func eventTypeResetsAfterDispatch() throws {
        let events = try parse("event: ping\ndata: {}\n\ndata: x\n\n")
        #expect(events.map(\.type) == ["ping", "message"])
    }

    @Test func commentsAreIgnored() throws {
        let events = try parse(": keep-alive\n:\ndata: x\n: another\n\n")
        #expect(events.map(\.data) == ["x"])
    }

    @Test(arguments: ["\n", "\r", "\r\n"])
    func lineEndings(_ ending: String) throws {
        let text = "event: e\(ending)data: 1\(ending)data: 2\(ending)\(ending)data: 3\(ending)\(ending)"
        let events = try parse(text)
        #expect(events.map(\.data) == ["1\n2", "3"])
        #expect(events.map(\.type) == ["e", "message"])
    }

    @Test func crAtChunkEndAndLFAtNextStartIsOneLineBreak() throws {
        // "data: a\r" | "\ndata: b\r\n\r\n": the CRLF split across chunks must not make an empty line.
        let text = "data: a\r\ndata: b\r\n\r\n"
        let events = try parse(text, splitAt: [8])
        #expect(events.map(\.data) == ["a\nb"])
    }

    @Test func crThenCrIsTwoLines() throws {
        let events = try parse("data: a\r\rdata: b\r\r")
        #expect(events.map(\.data) == ["a", "b"])
    }

    @Test func everySplitPositionGivesTheSameEvents() throws {
        let text = "\u{FEFF}event: message_start\r\ndata: {\"a\":1}\r\n\r\n: c\nid: 7\ndata: two\rdata: lines\r\r"
        let whole = try parse(text)
        #expect(whole.count == 2)
        for split in 0...text.utf8.count {
            #expect(try parse(text, splitAt: [split]) == whole, "split at \(split)")
        }
        // byte by byte
        #expect(try parse(text, splitAt: Array(0...text.utf8.count)) == whole)
    }

    @Test func bomIsSkippedOnlyAtStart() throws {
        let events = try parse("\u{FEFF}data: x\n\n")
        #expect(events.map(\.data) == ["x"])
        // A BOM split across chunks.
        #expect(try parse("\u{FEFF}data: y\n\n", splitAt: [1, 2]).map(\.data) == ["y"])
        // Without a BOM the first field is read normally.
        #expect(try parse("data: z\n\n", splitAt: [1]).map(\.data) == ["z"])
    }

    @Test func fieldWithoutColonHasEmptyValue() throws {
        // "data" alone appends an empty line to the data buffer.
        let events = try parse("data\ndata\n\n")
        #expect(events.map(\.data) == ["\n"])
        // "event" alone sets an empty type, which dispatches as "message".
        #expect(try parse("event\ndata: x\n\n").map(\.type) == ["message"])
    }

    @Test func onlyOneLeadingSpaceIsStripped() throws {
        let events = try parse("data:  two spaces\ndata:none\n\n")
        #expect(events.map(\.data) == [" two spaces\nnone"])
    }

    @Test func idPersistsAndNullIDIsIgnored() throws {
        let events = try parse("id: 1\ndata: a\n\ndata: b\n\nid: x\u{0}y\ndata: c\n\nid\ndata: d\n\n")
        #expect(events.map(\.lastEventID) == ["1", "1", "1", ""])
    }

    @Test func retryRequiresDigits() throws {
        let events = try parse("retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\n")
        #expect(events.map(\.retry) == [1500, nil])
    }

    @Test func eventWithoutDataIsNotDispatched() throws {
        let events = try parse("event: lonely\n\ndata: x\n\n")
        #expect(events.map(\.type) == ["message"])
    }

    @Test func unterminatedEventAtEndIsNotDispatched() throws {
        var parser = SSEParser()
        let events = try parser.feed("data: done\n\ndata: partial")
        #expect(events.map(\.data) == ["done"])
        #expect(parser.hasPendingEvent)
    }

    @Test func unknownFieldsAreIgnored() throws {
        #expect(try parse("foo: bar\ndata: x\n\n").map(\.data) == ["x"])
    }

    @Test func oversizedEventThrows() throws {
        let big = String(repeating: "x", count: 200)
        #expect(throws: SSEParserError.self) {
            _ = try parse("data: \(big)\n\n", configuration: .init(maxEventBytes: 100))
        }
        // Also when the line arrives in small pieces without a newline.
        #expect(throws: SSEParserError.self) {
            _ = try parse("data: \(big)", splitAt: Array(stride(from: 0, to: 200, by: 10)), configuration: .init(maxEventBytes: 100))
        }
        // Many small data lines adding up.
        let lines = String(repeating: "data: 0123456789\n", count: 20)
        #expect(throws: SSEParserError.self) {
            _ = try parse(lines + "\n", configuration: .init(maxEventBytes: 100))
        }
        // Within the limit it parses.
        #expect(try parse("data: \(big)\n\n", configuration: .init(maxEventBytes: 1000)).count == 1)
    }

    @Test func utf8SplitInsideACharacter() throws {
        let text = "data: héllo ✓\n\n"
        for split in 0...text.utf8.count {
            #expect(try parse(text, splitAt: [split]).map(\.data) == ["héllo ✓"])
        }
    }
}
