public import Foundation

/// One target of a route: a provider and one of its models (`anthropic/claude-sonnet-4-5`).
public struct RouteTarget: Sendable, Hashable, CustomStringConvertible {
    public var provider: String
    public var model: String

    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    /// Parses `provider/model` (the model may itself contain `/`); nil when either part is empty.
    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let provider = String(text[..<slash]), model = String(text[text.index(after: slash)...])
        guard !provider.isEmpty, !model.isEmpty else { return nil }
        self.init(provider: provider, model: model)
    }

    /// `provider/model`.
    public var description: String { "\(provider)/\(model)" }
}

/// A fallback route: the targets a job that names it tries, in order (`support-chat:
/// [anthropic/claude-sonnet-4-5, openai/gpt-4o, openai/gpt-4o-mini]`). Stored in
/// `sluice.routes`, set with `sluice routes set` or the configuration file's `routes:` section;
/// every worker reads a change on its next admission. See docs/ARCHITECTURE.md, "Routes".
public struct Route: Sendable, Hashable {
    /// Who wrote a route.
    public enum Source: String, Sendable, Hashable {
        /// The configuration file's `routes:` section (written by `sluice migrate`).
        case file
        /// `sluice routes set` (never overwritten by the file).
        case `operator`
    }

    /// The name jobs use (`^[a-z0-9][a-z0-9_.-]{0,62}$`).
    public var name: String
    /// The targets, in the order they are tried (1 to ``maxTargets``, no duplicates).
    public var targets: [RouteTarget]
    public var source: Source
    /// When it was last written (nil before it is stored).
    public var updatedAt: Date?

    /// The most targets a route may have.
    public static let maxTargets = 16

    public init(name: String, targets: [RouteTarget], source: Source = .operator, updatedAt: Date? = nil) {
        self.name = name
        self.targets = targets
        self.source = source
        self.updatedAt = updatedAt
    }

    /// Checks the name and targets; the error names the field and the rule.
    public func validate() throws(SluiceError) {
        let nameOK = name.utf8.count <= 63 && name.utf8.first.map { Self.isLowerAlnum($0) } == true
            && name.utf8.allSatisfy { Self.isLowerAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
        guard nameOK else { throw SluiceError.invalid("name", "format", "route names must match ^[a-z0-9][a-z0-9_.-]{0,62}$ (got \"\(name.prefix(80))\")") }
        guard !targets.isEmpty else { throw SluiceError.invalid("targets", "non_empty", "route \(name) needs at least one provider/model target") }
        guard targets.count <= Self.maxTargets else {
            throw SluiceError.invalid("targets", "max_count", "route \(name) has \(targets.count) targets; the most is \(Self.maxTargets)")
        }
        var seen: Set<RouteTarget> = []
        for (index, target) in targets.enumerated() {
            if target.provider == "route" {
                throw SluiceError.invalid("targets[\(index)]", "known", "a route's target must be a provider/model, not another route")
            }
            guard seen.insert(target).inserted else {
                throw SluiceError.invalid("targets[\(index)]", "unique", "route \(name) names \(target) twice")
            }
        }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}

/// A route target that admission passed over before an attempt's call, and why (its circuit
/// breaker was open, a provider cooldown, a bucket wait longer than the job's timeout, …).
public struct RouteSkip: Sendable, Hashable {
    public var target: RouteTarget
    public var reason: String

    public init(target: RouteTarget, reason: String) {
        self.target = target
        self.reason = reason
    }
}
