import Hummingbird
import Logging
import Prometheus
import SluiceJSON
import SluiceWorker

/// The operations endpoints of one worker process, served by Hummingbird:
///
/// | path | answer |
/// | --- | --- |
/// | `GET /metrics` | the Prometheus text exposition (format 0.0.4) of the process's registry |
/// | `GET /healthz` | 200 `ok` while the process runs (liveness) |
/// | `GET /readyz` | 200 when PostgreSQL (and Redis, if configured) answer and the worker is not draining, else 503; the JSON body names what is wrong |
///
/// Runs as a service of the worker's `ServiceGroup`, listed before the worker, so it keeps
/// answering (`/readyz`: draining) while the worker drains after SIGTERM.
struct OpsServer {
    struct Configuration {
        /// Address to bind. Default 0.0.0.0 (scrapers reach the process from outside its host or container).
        var host = "0.0.0.0"
        var port: Int
    }

    static func application(
        configuration: Configuration, registry: PrometheusCollectorRegistry, readiness: ReadinessProbe, logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in
            let readiness = await readiness.evaluate()
            var json = JSONWriter()
            json.beginObject()
            json.field("ready", readiness.ready)
            json.key("problems")
            json.beginObject()
            for name in readiness.problems.keys.sorted() { json.field(name, readiness.problems[name]) }
            json.endObject()
            json.endObject()
            return Response(
                status: readiness.ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: json.bytes + [UInt8(ascii: "\n")])))
        }
        let host = configuration.host
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: nil),
            onServerRunning: { _ in
                logger.info("serving /metrics, /healthz and /readyz", metadata: ["host": "\(host)", "port": "\(configuration.port)"])
            },
            logger: logger)
    }
}
