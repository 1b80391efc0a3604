import Foundation

/// How every command prints a point in time, in text and in `--json` output alike: RFC 3339 in
/// UTC with milliseconds, e.g. `2026-12-05T02:14:50.123Z`.
enum Timestamps {
    static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
    }
}
