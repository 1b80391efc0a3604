import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceJSON
import SluicePostgres

#if canImport(Glibc)
import Glibc
#endif

extension GlobalOptions {
    /// Runs `body` with a store on a small pool, shut down afterwards however `body` ends.
    func withStore<T>(_ label: String, _ body: (JobStore, Logger) async throws -> T) async throws -> T {
        let logger = try makeLogger(label)
        let postgres = PostgresClient(configuration: try postgresConfiguration(), pool: .init(maxConnections: 4), logger: logger)
        do {
            let value = try await body(JobStore(postgres: postgres), logger)
            await postgres.shutdown()
            return value
        } catch {
            await postgres.shutdown()
            throw error
        }
    }
}

/// A usage problem found after parsing (an unknown id, a malformed value): printed as
/// `Error: …` and exit status 2, like a parse error.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Parsing helpers shared by the operator commands; every failure is a usage error (exit 2).
enum Parse {
    static func uuid(_ text: String, option: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw UsageError("\(option): '\(text)' is not a UUID") }
        return id
    }

    static func state(_ text: String?) throws -> JobState? {
        try text.map { text in
            guard let state = JobState(rawValue: text) else {
                throw UsageError("--state: unknown state '\(text)'; states are queued, running, succeeded, dead, cancelled")
            }
            return state
        }
    }

    static func lane(_ text: String?) throws -> Lane? {
        try text.map { text in
            guard let lane = Lane(rawValue: text) else {
                throw UsageError("--lane: unknown lane '\(text)'; lanes are interactive, high, normal, batch")
            }
            return lane
        }
    }

    static func since(_ text: String?, option: String = "--since") throws -> Date? {
        try text.map { text in
            guard let duration = DurationText.parse(text) else {
                throw UsageError("\(option): '\(text)' is not a duration; write a number and a unit: 500ms, 30s, 15m, 2h, 7d")
            }
            let (seconds, atto) = duration.components
            return Date().addingTimeInterval(-(Double(seconds) + Double(atto) / 1e18))
        }
    }

    static func duration(_ text: String, option: String) throws -> Duration {
        guard let duration = DurationText.parse(text) else {
            throw UsageError("\(option): '\(text)' is not a duration; write a number and a unit: 500ms, 30s, 15m, 2h, 7d")
        }
        return duration
    }
}

/// Output helpers: JSON lines with explicit nulls, RFC 3339 timestamps, and whether a terminal
/// is attached (progress and confirmation only on one).
enum Output {
    static func line(_ build: (inout JSONWriter) -> Void) {
        var writer = JSONWriter()
        build(&writer)
        print(String(decoding: writer.bytes, as: UTF8.self))
    }

    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// `who@host`, recorded as `replayed_by`.
    static var operatorName: String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.environment["LOGNAME"] ?? "unknown"
        return "\(user)@\(ProcessInfo.processInfo.hostName)"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

extension JSONWriter {
    /// A field whose absence is written as `null` (stable keys in --json output).
    mutating func put(_ name: String, _ value: String?) {
        key(name)
        if let value { string(value) } else { null() }
    }

    mutating func put(_ name: String, _ value: Int?) {
        key(name)
        if let value { int(value) } else { null() }
    }

    mutating func put(_ name: String, _ value: Double?) {
        key(name)
        if let value { double(value) } else { null() }
    }

    mutating func put(_ name: String, _ value: Bool) {
        key(name)
        bool(value)
    }

    mutating func put(_ name: String, _ value: Date?) {
        put(name, value.map(Timestamps.rfc3339))
    }

    mutating func put(_ name: String, _ value: UUID?) {
        put(name, value.map { $0.uuidString.lowercased() })
    }
}
