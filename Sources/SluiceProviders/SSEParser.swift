import SluiceSupport

/// One dispatched server-sent event.
public struct SSEEvent: Sendable, Hashable {
    /// The `event:` field, or `"message"` when the event had none (WHATWG default).
    public var type: String
    /// The `data:` lines joined with `\n`, as UTF-8 bytes.
    public var dataBytes: [UInt8]
    /// The last event ID seen so far in the stream (the `id:` field persists across events).
    public var lastEventID: String
    /// The `retry:` reconnection time in milliseconds, when this event carried one.
    public var retry: Int?

    public init(type: String = "message", data: String, lastEventID: String = "", retry: Int? = nil) {
        self.type = type
        self.dataBytes = Array(data.utf8)
        self.lastEventID = lastEventID
        self.retry = retry
    }

    init(type: String, dataBytes: [UInt8], lastEventID: String, retry: Int?) {
        self.type = type
        self.dataBytes = dataBytes
        self.lastEventID = lastEventID
        self.retry = retry
    }

    /// The data as text (invalid UTF-8 is replaced, as WHATWG decoding does).
    public var data: String { String(decoding: dataBytes, as: UTF8.self) }
}

/// Why an event stream could not be parsed. The fields are read-only outside this module;
/// neither description quotes the stream (provider output).
public struct SSEParserError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind of failure; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A line or event is larger than ``SSEParser/Configuration/maxEventBytes``.
        public static let eventTooLarge = Code("eventTooLarge")
    }

    /// The kind of failure.
    public internal(set) var code: Code
    /// The size limit that was exceeded.
    public internal(set) var maxEventBytes: Int
    /// How many bytes of the event were buffered when the limit was hit.
    public internal(set) var bufferedBytes: Int?

    init(code: Code = .eventTooLarge, maxEventBytes: Int, bufferedBytes: Int? = nil) {
        self.code = code
        self.maxEventBytes = maxEventBytes
        self.bufferedBytes = bufferedBytes
    }

    /// A human-readable explanation.
    public var message: String { "server-sent event exceeds the limit of \(maxEventBytes) bytes" }

    /// `SSEParserError.<code>: <message>`.
    public var description: String { ErrorFormat.summary("SSEParserError", code: code, message) }

    public var debugDescription: String {
        ErrorFormat.debug("SSEParserError", code: code, [("maxEventBytes", maxEventBytes), ("bufferedBytes", bufferedBytes)])
    }
}

/// An incremental parser for `text/event-stream` (the WHATWG HTML "server-sent events" rules).
///
/// Feed it byte chunks exactly as they arrive from the network, split anywhere: lines may end
/// in CR, LF or CRLF (also a CR at the end of one chunk and its LF at the start of the next);
/// a leading UTF-8 BOM is skipped; lines starting with `:` are comments; a line without a
/// colon is a field with an empty value; one space after the colon is stripped; `data:` lines
/// are joined with `\n`; an empty line dispatches the event unless it has no data; `id:`
/// persists (unless it contains NUL) and `retry:` must be all digits. An unterminated event at
/// the end of the stream is discarded, as the standard says.
///
/// Memory is bounded: a single line or event larger than ``Configuration/maxEventBytes``
/// throws ``SSEParserError`` instead of growing without limit.
public struct SSEParser: Sendable {
    /// Parser limits.
    public struct Configuration: Sendable {
        /// The largest event (all its lines together) accepted. Default 4 MiB — far above any
        /// provider chunk, low enough that a broken peer cannot exhaust memory.
        public var maxEventBytes: Int

        public init(maxEventBytes: Int = 4 << 20) {
            self.maxEventBytes = maxEventBytes
        }
    }

    public let configuration: Configuration
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: [UInt8] = []
    private var lastEventID = ""
    private var retry: Int?
    private var pendingBytes = 0
    private var afterCR = false
    private var atStart = true
    private var bomMatched = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        line.reserveCapacity(256)
        data.reserveCapacity(256)
    }

    /// Whether a partial event (lines without the terminating blank line) is buffered, e.g.
    /// to tell that a stream was cut in the middle of an event.
    public var hasPendingEvent: Bool { !line.isEmpty || hasData || !eventType.isEmpty }

    /// Parses `chunk` and calls `onEvent` for every event it completes, in order.
    public mutating func feed(_ chunk: [UInt8], _ onEvent: (SSEEvent) throws -> Void) throws {
        try chunk.withUnsafeBufferPointer { try feed(buffer: $0, onEvent) }
    }

    /// Parses `chunk` and calls `onEvent` for every event it completes, in order.
    public mutating func feed(_ chunk: ArraySlice<UInt8>, _ onEvent: (SSEEvent) throws -> Void) throws {
        try chunk.withUnsafeBufferPointer { try feed(buffer: $0, onEvent) }
    }

    /// Parses `chunk` and returns the events it completes.
    public mutating func feed(_ chunk: [UInt8]) throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        try feed(chunk) { events.append($0) }
        return events
    }

    /// Parses `chunk` (text) and returns the events it completes.
    public mutating func feed(_ text: String) throws -> [SSEEvent] {
        try feed(Array(text.utf8))
    }

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// The core loop over one contiguous chunk.
    public mutating func feed(buffer: UnsafeBufferPointer<UInt8>, _ onEvent: (SSEEvent) throws -> Void) throws {
        var index = 0
        let count = buffer.count
        // Skip a UTF-8 BOM at the very start of the stream (possibly split across chunks).
        if atStart {
            while index < count && bomMatched < 3 {
                if buffer[index] == Self.bom[bomMatched] {
                    bomMatched += 1
                    index += 1
                } else {
                    // Not a BOM: the bytes matched so far belong to the first line.
                    line.append(contentsOf: Self.bom[0..<bomMatched])
                    bomMatched = 3
                }
            }
            if bomMatched < 3 { return }  // need more bytes to decide
            atStart = false
        }
        if afterCR && index < count {
            afterCR = false
            if buffer[index] == 0x0A { index += 1 }
        }
        var lineStart = index
        while index < count {
            let byte = buffer[index]
            if byte != 0x0A && byte != 0x0D {
                index += 1
                continue
            }
            // A complete line: buffer[lineStart..<index] (plus any carried-over prefix).
            if line.isEmpty {
                try process(UnsafeBufferPointer(rebasing: buffer[lineStart..<index]), onEvent)
            } else {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[lineStart..<index]))
                try checkLimit(extra: 0)
                let carried = line
                line.removeAll(keepingCapacity: true)
                try carried.withUnsafeBufferPointer { try process($0, onEvent) }
            }
            index += 1
            if byte == 0x0D {
                if index < count {
                    if buffer[index] == 0x0A { index += 1 }
                } else {
                    afterCR = true
                }
            }
            lineStart = index
        }
        if lineStart < count {
            line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[lineStart..<count]))
            try checkLimit(extra: 0)
        }
    }

    private func checkLimit(extra: Int) throws {
        if pendingBytes + line.count + extra > configuration.maxEventBytes {
            throw SSEParserError(maxEventBytes: configuration.maxEventBytes, bufferedBytes: pendingBytes + line.count + extra)
        }
    }

    private mutating func process(_ line: UnsafeBufferPointer<UInt8>, _ onEvent: (SSEEvent) throws -> Void) throws {
        if line.isEmpty {
            try dispatch(onEvent: onEvent)
            return
        }
        pendingBytes += line.count
        try checkLimit(extra: 0)
        if line[0] == 0x3A { return }  // comment
        var colon = 0
        while colon < line.count && line[colon] != 0x3A { colon += 1 }
        let name = UnsafeBufferPointer(rebasing: line[0..<colon])
        var valueStart = colon < line.count ? colon + 1 : line.count
        if valueStart < line.count && line[valueStart] == 0x20 { valueStart += 1 }
        let value = UnsafeBufferPointer(rebasing: line[valueStart...])
        switch name.count {
        case 4 where name[0] == 0x64 && name[1] == 0x61 && name[2] == 0x74 && name[3] == 0x61:  // data
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        case 5 where Self.equals(name, "event"):
            eventType.removeAll(keepingCapacity: true)
            eventType.append(contentsOf: value)
        case 2 where name[0] == 0x69 && name[1] == 0x64:  // id
            if !value.contains(0) {
                lastEventID = String(decoding: value, as: UTF8.self)
            }
        case 5 where Self.equals(name, "retry"):
            if !value.isEmpty && value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                retry = Int(String(decoding: value, as: UTF8.self))
            }
        default:
            break  // unknown field: ignored
        }
    }

    private static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let pointer = literal.utf8Start
        for index in 0..<bytes.count where bytes[index] != pointer[index] { return false }
        return true
    }

    private mutating func dispatch(onEvent: (SSEEvent) throws -> Void) throws {
        pendingBytes = 0
        guard hasData else {
            eventType.removeAll(keepingCapacity: true)
            retry = nil
            return
        }
        let type = eventType.isEmpty ? "message" : String(decoding: eventType, as: UTF8.self)
        let event = SSEEvent(type: type, dataBytes: data, lastEventID: lastEventID, retry: retry)
        data.removeAll(keepingCapacity: true)
        eventType.removeAll(keepingCapacity: true)
        hasData = false
        retry = nil
        try onEvent(event)
    }
}
