import CoreMetrics
import Prometheus
import SluiceWorker

/// The swift-metrics backend of `sluice worker`: every metric lands in one
/// `PrometheusCollectorRegistry` (served on `/metrics`), with the help text and histogram
/// buckets of Sluice's catalog (``WorkerMetrics/definitions`` and ``WorkerMetrics/planned``).
///
/// `PrometheusMetricsFactory` would do the same without help texts (it registers every metric
/// with an empty one, and the registry refuses two help texts for one name), so this factory
/// asks the registry directly; metrics outside the catalog get no help line and the default
/// buckets.
struct PrometheusBackend: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private let catalog: [String: MetricDefinition]

    /// Buckets of timers and aggregating recorders outside the catalog (seconds).
    private static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var catalog: [String: MetricDefinition] = [:]
        for definition in WorkerMetrics.definitions + WorkerMetrics.planned { catalog[definition.name] = definition }
        self.catalog = catalog
    }

    /// Bootstraps `MetricsSystem` with a backend once per process and returns its registry.
    static func bootstrap() -> PrometheusCollectorRegistry { shared.registry }

    private static let shared: PrometheusBackend = {
        let backend = PrometheusBackend()
        MetricsSystem.bootstrap(backend)
        return backend
    }()

    private func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: catalog[name]?.help ?? "")
    }

    private func buckets(_ name: String) -> [Double] {
        guard let buckets = catalog[name]?.buckets, !buckets.isEmpty else { return Self.defaultBuckets }
        return buckets
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let bounds = buckets(label).map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: bounds)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge {
            registry.unregisterGauge(gauge)
        } else if let histogram = handler as? ValueHistogram {
            registry.unregisterValueHistogram(histogram)
        }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
