import Logging
import OTel
import ServiceLifecycle

/// Trace export for `sluice worker`: when an OTLP endpoint is configured (`--otlp-endpoint`,
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`), swift-otel becomes
/// the process's tracer and exports the worker's spans (``SluiceWorker/JobTracing``) over
/// OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `http/json`).
/// Only traces: metrics stay on `/metrics`, logs on stderr. Off when no endpoint is set.
enum TraceExport {
    /// The exporter's background service (batching and sending spans), or nil when no endpoint
    /// is configured. The other `OTEL_*` variables (headers, sampler, batch delays, service
    /// name) apply as the OpenTelemetry specification defines them.
    static func bootstrap(endpoint: String?, environment: [String: String], logger: Logger) throws -> (any Service)? {
        let configured = endpoint ?? environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        guard let configured, !configured.isEmpty else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "sluice-worker"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.diagnosticLogger = .custom(logger)
        if let endpoint { configuration.traces.otlpExporter.endpoint = endpoint }
        let service = try OTel.bootstrap(configuration: configuration)
        logger.info("exporting traces over OTLP", metadata: ["endpoint": "\(configured)"])
        return service
    }
}
