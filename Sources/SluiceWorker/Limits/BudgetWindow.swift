public import Foundation

/// A budget's window: one UTC day or one UTC month.
public struct BudgetWindow: Sendable, Hashable {
    /// `daily` or `monthly`.
    public var kind: String
    /// Key part: `d:2026-12-05` or `m:2026-12`.
    public var name: String
    /// When the window ends (and a hold for it is released).
    public var end: Date

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    public static func day(containing date: Date) -> BudgetWindow {
        let c = utc.dateComponents([.year, .month, .day], from: date)
        let start = utc.date(from: c)!
        return BudgetWindow(kind: "daily", name: String(format: "d:%04d-%02d-%02d", c.year!, c.month!, c.day!),
                            end: utc.date(byAdding: .day, value: 1, to: start)!)
    }

    public static func month(containing date: Date) -> BudgetWindow {
        let c = utc.dateComponents([.year, .month], from: date)
        let start = utc.date(from: c)!
        return BudgetWindow(kind: "monthly", name: String(format: "m:%04d-%02d", c.year!, c.month!),
                            end: utc.date(byAdding: .month, value: 1, to: start)!)
    }
}
