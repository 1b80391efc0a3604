/// One metric of Sluice's catalog: its Prometheus name, type, labels, help text and (for
/// histograms) bucket bounds. ``WorkerMetrics/definitions`` lists what this build emits and
/// ``WorkerMetrics/planned`` the names reserved for features being added; a metrics backend
/// (the `sluice` CLI's Prometheus export) reads help texts and buckets from here.
public struct MetricDefinition: Sendable, Hashable {
    /// The Prometheus type.
    public enum Kind: String, Sendable, Hashable {
        case counter, gauge, histogram
    }

    /// `sluice_…`, with `_total` for counters and the base unit (`_seconds`, `_usd`) in the name.
    public let name: String
    public let kind: Kind
    /// Label names (the values are bounded: lanes, configured providers and models, outcomes, error classes).
    public let labels: [String]
    /// The `# HELP` text.
    public let help: String
    /// Histogram bucket upper bounds, in the metric's unit (seconds); empty for other kinds.
    public let buckets: [Double]

    public init(_ name: String, _ kind: Kind, labels: [String] = [], help: String, buckets: [Double] = []) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.help = help
        self.buckets = buckets
    }
}
