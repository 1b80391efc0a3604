import ArgumentParser
import Foundation

/// Durations on the command line: a number and a unit, `500ms`, `30s`, `15m`, `2h`, `7d`
/// (`0` alone is zero). Used by `--since`, `--older-than`, `--webhook-schedule` and `--watch`.
enum DurationText {
    /// Parses `text`; nil when it is not a duration.
    static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { return .zero }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]
        for (unit, seconds) in units where trimmed.hasSuffix(unit) {
            let number = trimmed.dropLast(unit.count)
            // "5ms" ends with "s" too: try the longest unit first (ms is listed before s).
            guard let value = Double(number), value >= 0, value.isFinite, !number.hasPrefix("+") else { continue }
            return .milliseconds(Int((value * seconds * 1000).rounded()))
        }
        return nil
    }

    /// Parses `text` for the option `option`, or fails with a usage error (exit 2) that says
    /// what a duration looks like.
    static func required(_ text: String, option: String) throws -> Duration {
        guard let duration = parse(text) else {
            throw ValidationError("\(option): '\(text)' is not a duration; write a number and a unit: 500ms, 30s, 15m, 2h, 7d")
        }
        return duration
    }

    /// `now − duration` for `--since`-style options.
    static func since(_ text: String, option: String) throws -> Date {
        let duration = try required(text, option: option)
        let (seconds, atto) = duration.components
        return Date().addingTimeInterval(-(Double(seconds) + Double(atto) / 1e18))
    }
}
