/// A priority lane. Workers serve lanes in this order (interactive first), with an aging rule
/// that keeps lower lanes from starving (see `docs/ARCHITECTURE.md`).
public enum Lane: String, Sendable, Codable, CaseIterable, Comparable {
    case interactive
    case high
    case normal
    case batch

    /// 0 for interactive … 3 for batch; the value stored in `sluice.jobs.priority`.
    public var priority: Int {
        switch self {
        case .interactive: 0
        case .high: 1
        case .normal: 2
        case .batch: 3
        }
    }

    public init?(priority: Int) {
        guard let lane = Lane.allCases.first(where: { $0.priority == priority }) else { return nil }
        self = lane
    }

    public static func < (lhs: Lane, rhs: Lane) -> Bool { lhs.priority < rhs.priority }
}
