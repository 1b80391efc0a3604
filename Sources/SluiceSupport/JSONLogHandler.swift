public import Foundation
public import Logging
import SluiceJSON

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes one JSON object per line (JSON Lines) to a file descriptor,
/// standard error by default, for log collectors (Loki, Elasticsearch, CloudWatch, journald).
///
/// Each line:
/// ```json
/// {"timestamp":"2026-12-05T02:14:50.123Z","level":"info","logger":"sluice.worker","message":"worker started","worker":"host:42:ab12cd34","concurrency":"256"}
/// ```
/// - `timestamp`: RFC 3339 in UTC with milliseconds; `level`: swift-log's level name;
///   `logger`: the logger's label; `message`: the message.
/// - Metadata (the handler's, the provider's and the call's, later ones winning) follows as
///   top-level fields in key order: strings as strings, `Logger.MetadataValue.array` as arrays,
///   `.dictionary` as objects. A key that would clash with the four fields above is written as
///   `metadata.KEY`.
/// - One `write(2)` per line, so lines of processes sharing the descriptor (the supervisor
///   and its workers) never interleave within a line.
///
/// The handler writes what it is given: callers keep prompts and outputs out of log calls and
/// pass free text that may contain request data through ``LogRedaction/redact(_:)``.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info

    private let label: String
    private let fileDescriptor: Int32

    /// A handler for the logger `label` writing to `fileDescriptor` (standard error by default).
    public init(label: String, fileDescriptor: Int32 = 2, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.fileDescriptor = fileDescriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        var line = Self.render(date: Date(), level: event.level, label: label, message: event.message.description, metadata: merged)
        line.append(UInt8(ascii: "\n"))
        Self.writeAll(line, to: fileDescriptor)
    }

    /// The JSON object of one log line (without the newline).
    public static func render(date: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> [UInt8] {
        var json = JSONWriter(capacity: 256 + message.utf8.count)
        json.beginObject()
        json.field("timestamp", timestamp(date))
        json.field("level", level.rawValue)
        json.field("logger", label)
        json.field("message", message)
        for key in metadata.keys.sorted() {
            json.key(reserved.contains(key) ? "metadata." + key : key)
            write(metadata[key]!, to: &json)
        }
        json.endObject()
        return json.bytes
    }

    private static let reserved: Set<String> = ["timestamp", "level", "logger", "message"]

    private static func write(_ value: Logger.MetadataValue, to json: inout JSONWriter) {
        switch value {
        case .string(let text): json.string(text)
        case .stringConvertible(let convertible): json.string(convertible.description)
        case .array(let values):
            json.beginArray()
            for element in values { write(element, to: &json) }
            json.endArray()
        case .dictionary(let dictionary):
            json.beginObject()
            for key in dictionary.keys.sorted() {
                json.key(key)
                write(dictionary[key]!, to: &json)
            }
            json.endObject()
        }
    }

    /// `2026-12-05T02:14:50.123Z`.
    static func timestamp(_ date: Date) -> String {
        let millis = (date.timeIntervalSince1970 * 1000).rounded(.down)
        var seconds = time_t((millis / 1000).rounded(.down))
        let fraction = Int(millis - Double(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(fraction, 3))Z"
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere to report a failing log stream
                }
                offset += written
            }
        }
    }
}
