import Foundation
import SluiceWorker
import Testing

/// The metric catalog follows Prometheus conventions, and the alerts, the dashboard and the
/// operations guide name only metrics the catalog has (emitted or reserved).
@Suite("Metric catalog")
struct MetricCatalogTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let catalog = WorkerMetrics.definitions + WorkerMetrics.planned

    @Test func namesFollowPrometheusConventions() {
        #expect(Set(Self.catalog.map(\.name)).count == Self.catalog.count, "duplicate names")
        for metric in Self.catalog {
            #expect(metric.name.hasPrefix("sluice_"), "\(metric.name)")
            #expect(metric.name.wholeMatch(of: /[a-z_][a-z0-9_]*/) != nil, "\(metric.name)")
            #expect((metric.kind == .counter) == metric.name.hasSuffix("_total"), "\(metric.name): counters and only counters end in _total")
            #expect(!metric.help.isEmpty, "\(metric.name) has no help text")
            #expect(metric.kind == .histogram ? !metric.buckets.isEmpty : metric.buckets.isEmpty, "\(metric.name)")
            #expect(metric.buckets == metric.buckets.sorted() && Set(metric.buckets).count == metric.buckets.count, "\(metric.name)")
            #expect(!metric.labels.contains { ["job_id", "job", "id", "user", "request_id"].contains($0) }, "\(metric.name): per-job label")
            for unit in ["_milliseconds", "_ms", "_minutes", "_cents"] {
                #expect(!metric.name.contains(unit), "\(metric.name): use base units")
            }
        }
    }

    /// Names a file refers to, with histogram and counter sample suffixes mapped to the family.
    func referencedNames(_ path: String) throws -> Set<String> {
        let text = try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
        var names = Set<String>()
        for match in text.matches(of: /sluice_[a-z0-9_]+/) {
            var name = String(match.output)
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !Self.catalog.contains(where: { $0.name == name }) {
                name = String(name.dropLast(suffix.count))
            }
            names.insert(name)
        }
        return names
    }

    @Test(arguments: ["deploy/prometheus/alerts.yml", "deploy/grafana/sluice.json", "docs/OPERATIONS.md", "README.md"])
    func filesNameOnlyCatalogMetrics(_ path: String) throws {
        let known = Set(Self.catalog.map(\.name))
        // Not metric names: roles and NOTIFY channels the files also mention; `sluice_queue_*`-style prefixes.
        let other: Set<String> = ["sluice_keda", "sluice_tenant", "sluice_jobs", "sluice_cancel", "sluice_done"]
        for name in try referencedNames(path) where !known.contains(name) && !other.contains(name) && !name.hasSuffix("_") {
            Issue.record("\(path) names \(name), which is not in WorkerMetrics.definitions or .planned")
        }
    }

    @Test func theGuideDocumentsEveryMetric() throws {
        let guide = try referencedNames("docs/OPERATIONS.md")
        for metric in Self.catalog {
            #expect(guide.contains(metric.name), "docs/OPERATIONS.md does not document \(metric.name)")
        }
    }
}
