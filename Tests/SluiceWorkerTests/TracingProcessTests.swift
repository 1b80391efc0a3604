import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Sluice
import SluiceJSON
import SluiceMockProvider
import SluicePostgres
import SluiceSupport
import SluiceTestScope
import SluiceTestSupport
import Testing

/// Traces of a real `sluice worker` process, exported over OTLP/HTTP (JSON encoding) to a
/// collector in the test: the job's spans continue the trace it was enqueued with.
@Suite("Traces over OTLP", .serialized, .workerDatabase)
struct TracingProcessTests {
    /// An OTLP/HTTP collector on loopback that keeps every body posted to it.
    final class Collector: Sendable {
        let bodies = Locked<[[UInt8]]>([])

        func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
            let router = Router()
            router.on("/**", method: .post) { request, _ -> Response in
                let bytes = try await request.body.collect(upTo: 16 << 20)
                self.bodies.withLock { $0.append(Array(buffer: bytes)) }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
            var logger = Logger(label: "otlp-collector")
            logger.logLevel = .error
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "collector"),
                                  onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            let runner = Task { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                runner.cancel()
                throw CollectorFailed()
            }
            let result: Result<T, any Error>
            do { result = .success(try await body("http://127.0.0.1:\(port)")) } catch { result = .failure(error) }
            await group.triggerGracefulShutdown()
            _ = try? await runner.value
            return try result.get()
        }

        struct CollectorFailed: Error {}

        struct Span: Equatable {
            var name: String
            var traceID: String
            var spanID: String
            var parentSpanID: String
            var attributes: [String: String]
        }

        /// Every span received so far (OTLP JSON: resourceSpans → scopeSpans → spans).
        var spans: [Span] {
            var spans: [Span] = []
            for body in bodies.current {
                guard case .object(let root)? = try? JSONValue.parse(body), case .array(let resources)? = root["resourceSpans"] else { continue }
                for case .object(let resource) in resources {
                    guard case .array(let scopes)? = resource["scopeSpans"] else { continue }
                    for case .object(let scope) in scopes {
                        guard case .array(let list)? = scope["spans"] else { continue }
                        for case .object(let span) in list {
                            var attributes: [String: String] = [:]
                            if case .array(let items)? = span["attributes"] {
                                for case .object(let item) in items {
                                    guard case .string(let key)? = item["key"], case .object(let value)? = item["value"] else { continue }
                                    switch value.values.first {
                                    case .string(let s)?: attributes[key] = s
                                    case .number(let n)?: attributes[key] = String(n)
                                    default: attributes[key] = "\(value.values.first.map { "\($0)" } ?? "")"
                                    }
                                }
                            }
                            spans.append(Span(name: Self.string(span["name"]), traceID: Self.id(span["traceId"]),
                                              spanID: Self.id(span["spanId"]), parentSpanID: Self.id(span["parentSpanId"]),
                                              attributes: attributes))
                        }
                    }
                }
            }
            return spans
        }

        static func string(_ value: JSONValue?) -> String {
            if case .string(let s)? = value { return s }
            return ""
        }

        /// OTLP/JSON ids are hex; protobuf's JSON mapping would give base64: accept both.
        static func id(_ value: JSONValue?) -> String {
            let text = string(value)
            if text.isEmpty || (text.count.isMultiple(of: 16) && text.allSatisfy(\.isHexDigit)) { return text.lowercased() }
            guard let data = Data(base64Encoded: text) else { return text }
            return data.map { String(format: "%02x", $0) }.joined()
        }
    }

    @Test func jobSpansContinueTheTraceTheJobWasEnqueuedWith() async throws {
        let h = try WorkerHarness.current
        let mock = try await LimiterProcessTests().startMock(h, rpm: nil, window: .seconds(60))
        let collector = Collector()
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
        _ = try await h.postgres.query("UPDATE sluice.settings SET allow_http_webhooks = true")
        _ = try await h.postgres.query("INSERT INTO sluice.tenants (id, webhook_url) VALUES ('acme', $1)", [hook + "/hook"])
        _ = try await h.postgres.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES ('acme', $1)", [WebhookTests.secretA])
        try await collector.run { endpoint in
            let scope = try TestScope.required(for: "a configuration file")
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-traces-\(UUID().uuidString).yaml").path
            try "providers:\n  - {name: openai, kind: openai, base_url: \"\(mock.openAIBaseURL.absoluteString)\", api_keys: [sk-test-trace-key]}\n"
                .write(toFile: path, atomically: false, encoding: .utf8)
            scope.onExit("configuration file") { try? FileManager.default.removeItem(atPath: path) }
            var environment = ProcessInfo.processInfo.environment
            environment["SLUICE_DATABASE_URL"] = h.url
            environment["SLUICE_CONFIG"] = path
            environment["SLUICE_REDIS_URL"] = nil
            environment["SLUICE_WEBHOOK_ALLOW"] = "127.0.0.1/32"
            environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/json"
            environment["OTEL_BSP_SCHEDULE_DELAY"] = "100"
            let worker = try ChildProcess.spawn(
                WorkerProcessTests.sluiceBinary.path,
                ["worker", "--processes", "1", "--concurrency", "4", "--poll-ms", "100", "--grace-seconds", "5", "--log-level", "warning"],
                environment: environment, standardError: .capture)
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7"
            let job = try await h.client.enqueue(JobSpec(
                tenant: "acme", provider: "openai", model: "gpt-4o-mini", request: chat("traced [[mock: tokens=5,ttft_ms=50]]"),
                traceparent: "00-\(traceID)-\(parent)-01")).id
            #expect(try await h.client.wait(for: job, timeout: .seconds(60)).state == .succeeded)
            try await AdmissionTests.eventually("the job's spans are exported") {
                let names = Set(collector.spans.map(\.name))
                return names.isSuperset(of: ["sluice.job", "sluice.queue_wait", "sluice.provider_call", "sluice.result_write",
                                             "sluice.webhook_delivery"])
            }
            let spans = collector.spans
            let root = try #require(spans.first { $0.name == "sluice.job" })
            #expect(root.traceID == traceID)
            #expect(root.parentSpanID == parent, "the job span continues the enqueued traceparent")
            #expect(root.attributes["sluice.job_id"] == job.uuidString.lowercased())
            #expect(root.attributes["sluice.tenant"] == "acme")
            for name in ["sluice.queue_wait", "sluice.provider_call", "sluice.result_write"] {
                let child = try #require(spans.first { $0.name == name })
                #expect(child.traceID == traceID, "\(name) is in the job's trace")
                #expect(child.parentSpanID == root.spanID, "\(name) is a child of sluice.job")
            }
            let call = try #require(spans.first { $0.name == "sluice.provider_call" })
            #expect(call.attributes["sluice.output_tokens"] != nil)
            let write = try #require(spans.first { $0.name == "sluice.result_write" })
            #expect(write.attributes["sluice.outcome"] == "succeeded")
            // The delivery happens after the job's span is over: it joins the enqueued trace as
            // a child of the enqueuer's span, and the receiver gets its traceparent.
            let delivery = try #require(spans.first { $0.name == "sluice.webhook_delivery" })
            #expect(delivery.traceID == traceID)
            #expect(delivery.parentSpanID == parent)
            #expect(delivery.attributes["sluice.webhook.outcome"] == "delivered")
            #expect(delivery.attributes["sluice.job_id"] == job.uuidString.lowercased())
            let received = try await receiver.waitFor(1)
            let header = try #require(received.first?.traceparent)
            #expect(header == "00-\(traceID)-\(delivery.spanID)-01", "the request carries the delivery span's context")
            worker.send(SIGTERM)
            #expect(await worker.waitForExit(timeout: .seconds(30)) == .exited(0), "\(worker.standardError())")
        }
        }
    }
}
