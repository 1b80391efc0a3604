import Foundation

/// Text conversions for `timestamptz` and `interval`, done with integer arithmetic (no
/// formatter objects, no locale, no time zone database): the session runs with
/// `DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres`.
enum PostgresTime {
    /// `2024-01-02 03:04:05.123456+00`, rounded to microseconds.
    static func format(_ date: Date, into out: inout [UInt8]) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var days = micros / 86_400_000_000
        var dayMicros = micros % 86_400_000_000
        if dayMicros < 0 { dayMicros += 86_400_000_000; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        var year = y
        let bc = year <= 0
        if bc { year = 1 - year }
        appendPadded(year, 4, &out); out.append(UInt8(ascii: "-"))
        appendPadded(m, 2, &out); out.append(UInt8(ascii: "-"))
        appendPadded(d, 2, &out); out.append(UInt8(ascii: " "))
        let secs = dayMicros / 1_000_000
        appendPadded(secs / 3600, 2, &out); out.append(UInt8(ascii: ":"))
        appendPadded(secs / 60 % 60, 2, &out); out.append(UInt8(ascii: ":"))
        appendPadded(secs % 60, 2, &out); out.append(UInt8(ascii: "."))
        appendPadded(dayMicros % 1_000_000, 6, &out)
        out.append(contentsOf: "+00".utf8)
        if bc { out.append(contentsOf: " BC".utf8) }
    }

    /// Parses `timestamptz`, `timestamp` (taken as UTC) and `date` text.
    static func parseDate(_ s: ArraySlice<UInt8>) -> Date? {
        if s.elementsEqual("infinity".utf8) { return .distantFuture }
        if s.elementsEqual("-infinity".utf8) { return .distantPast }
        var p = s.startIndex
        let e = s.endIndex
        func number(_ maxDigits: Int) -> Int64? {
            var v: Int64 = 0
            var n = 0
            while p < e, n < maxDigits, let d = digit(s[p]) { v = v * 10 + Int64(d); p += 1; n += 1 }
            return n == 0 ? nil : v
        }
        func expect(_ c: Character) -> Bool {
            guard p < e, s[p] == c.asciiValue! else { return false }
            p += 1
            return true
        }
        guard let year = number(9), expect("-"), let month = number(2), expect("-"), let day = number(2) else { return nil }
        var micros: Int64 = 0
        if p < e, s[p] == UInt8(ascii: " ") || s[p] == UInt8(ascii: "T") {
            p += 1
            guard let h = number(2), expect(":"), let mi = number(2), expect(":"), let sec = number(2) else { return nil }
            micros = ((h * 60 + mi) * 60 + sec) * 1_000_000
            if p < e, s[p] == UInt8(ascii: ".") {
                p += 1
                var frac: Int64 = 0
                var n = 0
                while p < e, let d = digit(s[p]) {
                    if n < 6 { frac = frac * 10 + Int64(d) }
                    n += 1
                    p += 1
                }
                guard n > 0 else { return nil }
                for _ in n..<max(n, 6) { frac *= 10 }
                micros += frac
            }
            if p < e, s[p] == UInt8(ascii: "+") || s[p] == UInt8(ascii: "-") {
                let sign: Int64 = s[p] == UInt8(ascii: "+") ? 1 : -1
                p += 1
                guard let oh = number(2) else { return nil }
                var offset = oh * 3600
                if expect(":") { guard let om = number(2) else { return nil }; offset += om * 60 }
                if expect(":") { guard let os = number(2) else { return nil }; offset += os }
                micros -= sign * offset * 1_000_000
            } else if p < e, s[p] == UInt8(ascii: "Z") {
                p += 1
            }
        }
        var y = year
        if p < e {
            guard s[p...].elementsEqual(" BC".utf8) else { return nil }
            y = 1 - year
            p = e
        }
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        let days = daysFromCivil(y, month, day)
        let total = days * 86_400_000_000 + micros
        return Date(timeIntervalSince1970: Double(total / 1_000_000) + Double(total % 1_000_000) / 1_000_000)
    }

    /// `interval` input: whole microseconds.
    static func format(_ duration: Duration, into out: inout [UInt8]) {
        let c = duration.components
        let micros = c.seconds * 1_000_000 + c.attoseconds / 1_000_000_000_000
        out.append(contentsOf: "\(micros) microseconds".utf8)
    }

    /// Parses IntervalStyle=postgres output (`1 year 2 mons -3 days +04:05:06.5`). Months count
    /// as 30 days and years as 365.25 days, like `extract(epoch from interval)`.
    static func parseInterval(_ s: ArraySlice<UInt8>) -> Duration? {
        let tokens = s.split(separator: UInt8(ascii: " "))
        var micros: Int64 = 0
        var i = 0
        while i < tokens.count {
            let t = tokens[i]
            if t.contains(UInt8(ascii: ":")) {
                var body = t[...]
                var sign: Int64 = 1
                if body.first == UInt8(ascii: "-") { sign = -1; body = body.dropFirst() } else if body.first == UInt8(ascii: "+") { body = body.dropFirst() }
                let parts = body.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
                guard parts.count == 3, let h = parseInt(parts[0]), let m = parseInt(parts[1]) else { return nil }
                let secParts = parts[2].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
                guard let sec = parseInt(secParts[0]) else { return nil }
                var frac: Int64 = 0
                if secParts.count == 2 {
                    var n = 0
                    for b in secParts[1] {
                        guard let d = digit(b) else { return nil }
                        if n < 6 { frac = frac * 10 + Int64(d) }
                        n += 1
                    }
                    for _ in n..<max(n, 6) { frac *= 10 }
                }
                micros += sign * (((h * 60 + m) * 60 + sec) * 1_000_000 + frac)
                i += 1
            } else {
                guard i + 1 < tokens.count, let n = parseInt(tokens[i]) else { return nil }
                let unit = String(decoding: tokens[i + 1], as: UTF8.self)
                switch unit {
                case "year", "years": micros += n * 31_557_600_000_000
                case "mon", "mons": micros += n * 2_592_000_000_000
                case "day", "days": micros += n * 86_400_000_000
                default: return nil
                }
                i += 2
            }
        }
        return .microseconds(micros)
    }

    static func parseInt(_ s: ArraySlice<UInt8>) -> Int64? {
        var p = s.startIndex
        var negative = false
        if p < s.endIndex, s[p] == UInt8(ascii: "-") || s[p] == UInt8(ascii: "+") { negative = s[p] == UInt8(ascii: "-"); p += 1 }
        guard p < s.endIndex else { return nil }
        var v: Int64 = 0
        while p < s.endIndex {
            guard let d = digit(s[p]) else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            if o1 || o2 { return nil }
            v = a
            p += 1
        }
        return v
    }

    @inline(__always) static func digit(_ b: UInt8) -> UInt8? {
        b >= 48 && b <= 57 ? b - 48 : nil
    }

    static func appendPadded(_ value: Int64, _ width: Int, _ out: inout [UInt8]) {
        var digits: [UInt8] = []
        var v = value
        repeat { digits.append(UInt8(48 + v % 10)); v /= 10 } while v > 0
        for _ in digits.count..<max(width, digits.count) { out.append(48) }
        out.append(contentsOf: digits.reversed())
    }

    // Howard Hinnant's civil-from-days / days-from-civil (proleptic Gregorian, day 0 = 1970-01-01).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
