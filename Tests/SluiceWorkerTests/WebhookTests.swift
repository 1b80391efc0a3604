import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluicePostgres
import SluiceSupport
import SluiceTestScope
import SluiceTestSupport
import SluiceWorker
import Testing

/// Webhook delivery end to end: real PostgreSQL, in-process workers with the echo provider, a
/// dispatcher over the real libcurl client, and a Hummingbird receiver on loopback.
@Suite("Webhooks", .workerDatabase)
struct WebhookTests {
    /// A shortened schedule, loopback allow-listed, quick polls.
    static func configuration(schedule: [Duration] = [.zero, .milliseconds(200), .milliseconds(200)],
                              allowed: [String] = ["127.0.0.1/32"]) -> WebhookDispatcher.Configuration {
        var configuration = WebhookDispatcher.Configuration()
        configuration.schedule = schedule
        configuration.jitter = 0
        configuration.timeout = .seconds(5)
        configuration.lease = .seconds(10)
        configuration.pollInterval = .milliseconds(50)
        configuration.allowed = allowed.map { WebhookAddressGuard.Network($0)! }
        return configuration
    }

    /// Runs a worker and a dispatcher (sharing one HTTP client) while `body` runs.
    func withDelivery<T: Sendable>(_ h: WorkerHarness, _ configuration: WebhookDispatcher.Configuration = configuration(),
                                   _ body: @Sendable () async throws -> T) async throws -> T {
        let http = HTTPClient(logger: h.logger)
        let dispatcher = try WebhookDispatcher(configuration: configuration, store: JobStore(postgres: h.postgres), http: http,
                                               logger: h.logger)
        let worker = try h.makeWorker()
        let group = ServiceGroup(configuration: .init(services: [.init(service: worker), .init(service: dispatcher)], logger: h.logger))
        let runner = Task { try await group.run() }
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
        await http.shutdown()
        return try result.get()
    }

    /// A tenant with a webhook URL and a known secret; http URLs allowed.
    func tenant(_ h: WorkerHarness, _ id: String, url: String, secret: String) async throws {
        _ = try await h.postgres.query("UPDATE sluice.settings SET allow_http_webhooks = true")
        _ = try await h.postgres.query("INSERT INTO sluice.tenants (id, webhook_url) VALUES ($1, $2)", [id, url])
        _ = try await h.postgres.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES ($1, $2)", [id, secret])
    }

    static let secretA = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()
    static let secretB = "whsec_" + Data((0..<24).map { UInt8(200 - $0) }).base64EncodedString()

    func deliveryState(_ h: WorkerHarness, job: UUID) async throws -> (state: String, attempts: Int, status: Int?, error: String?)? {
        guard let row = try await h.postgres.query(
            "SELECT state, attempts, last_status, last_error FROM sluice.webhook_deliveries WHERE job_id = $1", [job]).first else { return nil }
        return (try row.decode(String.self, column: "state"), try row.decode(Int.self, column: "attempts"),
                try row.decode(Int?.self, column: "last_status"), try row.decode(String?.self, column: "last_error"))
    }

    func waitForDelivery(_ h: WorkerHarness, job: UUID, state: String, seconds: Double = 20) async throws
        -> (state: String, attempts: Int, status: Int?, error: String?)? {
        let deadline = Date().addingTimeInterval(seconds)
        var last: (state: String, attempts: Int, status: Int?, error: String?)?
        while Date() < deadline {
            last = try await deliveryState(h, job: job)
            if last?.state == state { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        return last
    }

    /// Verifies a Standard Webhooks signature header with Python's hmac (an implementation that
    /// shares no code with Sluice's): prints one line per signature, "ok" or "bad".
    static func pythonVerify(secrets: [String], id: String, timestamp: String, body: [UInt8], header: String) async throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-body-\(UUID().uuidString)")
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import base64, hashlib, hmac, sys
            secrets, msg_id, ts, path, header = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
            body = open(path, "rb").read()
            keys = [base64.b64decode(s[len("whsec_"):]) for s in secrets]
            signed = msg_id.encode() + b"." + ts.encode() + b"." + body
            for sig in header.split(" "):
                version, value = sig.split(",", 1)
                expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() for k in keys]
                print("ok" if version == "v1" and any(hmac.compare_digest(value, e) for e in expected) else "bad")
            """
        let result = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script, secrets.joined(separator: ","), id, timestamp,
                                                                 file.path, header])
        return result.standardOutput.split(separator: "\n").map(String.init)
    }

    // MARK: Signing

    @Test func signaturesVerifyWithAnIndependentImplementation() async throws {
        let body = Array(#"{"type":"job.succeeded","data":{"id":"x","output":{"text":"héllo"}}}"#.utf8)
        let header = try WebhookSigner.signatureHeader(secrets: [Redacted(Self.secretA)], id: "msg_1", timestamp: 1_700_000_000, body: body)
        #expect(header.hasPrefix("v1,"))
        #expect(try await Self.pythonVerify(secrets: [Self.secretA], id: "msg_1", timestamp: "1700000000", body: body, header: header) == ["ok"])
        // Any change to id, timestamp, body or key fails verification.
        #expect(try await Self.pythonVerify(secrets: [Self.secretA], id: "msg_2", timestamp: "1700000000", body: body, header: header) == ["bad"])
        #expect(try await Self.pythonVerify(secrets: [Self.secretA], id: "msg_1", timestamp: "1700000001", body: body, header: header) == ["bad"])
        #expect(try await Self.pythonVerify(secrets: [Self.secretB], id: "msg_1", timestamp: "1700000000", body: body, header: header) == ["bad"])
        #expect(try await Self.pythonVerify(secrets: [Self.secretA], id: "msg_1", timestamp: "1700000000", body: body + [32], header: header) == ["bad"])
        // Secrets: whsec_ + base64 of 24-64 bytes.
        let generated = try WebhookSigner.generateSecret()
        #expect(generated.revealed.hasPrefix("whsec_"))
        #expect(Data(base64Encoded: String(generated.revealed.dropFirst(6)))?.count == 32)
        #expect(throws: WebhookError.self) { try WebhookSigner.generateSecret(byteCount: 16) }
        #expect(throws: WebhookError.self) {
            try WebhookSigner.signature(secret: Redacted("whsec_" + Data(count: 8).base64EncodedString()), id: "a", timestamp: 1, body: [])
        }
        #expect("\(generated)" == "<redacted>")
    }

    /// New and redelivered deliveries wake the dispatcher through `NOTIFY sluice_webhooks`: with
    /// a poll of two minutes, both still arrive within seconds.
    @Test func newAndRedeliveredDeliveriesWakeTheDispatcherWithoutItsPoll() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver()
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            var configuration = Self.configuration()
            configuration.pollInterval = .seconds(120)
            try await withDelivery(h, configuration) {
                // The dispatcher's listener is active (a notification before that would only be
                // found by the poll).
                try await AdmissionTests.eventually("the dispatcher listens") {
                    try await h.postgres.query("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%LISTEN%sluice_webhooks%'")
                        .rows[0].decode(Int.self, at: 0) >= 1
                }
                // Its first claims found nothing: it now sleeps for its poll.
                try await Task.sleep(for: .milliseconds(500))
                let id = try await h.client.enqueue(echo("acme", "wake up")).id
                let first = try await receiver.waitFor(1, seconds: 30)
                try #require(first.count == 1, "the delivery waited for the poll")
                _ = try await waitForDelivery(h, job: id, state: "delivered")
                let delivery = try #require(try await h.postgres.query("SELECT id FROM sluice.webhook_deliveries WHERE job_id = $1", [id])
                    .rows.first?.decode(UUID.self, at: 0))
                #expect(try await JobStore(postgres: h.postgres).redeliverWebhooks([delivery]) == [delivery])
                let again = try await receiver.waitFor(2, seconds: 30)
                #expect(again.count == 2, "the redelivery waited for the poll")
                #expect(again.last?.id == first[0].id, "the same webhook-id")
            }
        }
    }

    @Test func aSucceededJobIsDeliveredSignedByBothSecretsDuringRotation() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver()
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            // A rotation: the new secret signs, and the old one too until it expires.
            _ = try await h.postgres.query("UPDATE sluice.tenant_secrets SET expires_at = now() + interval '1 hour'")
            _ = try await h.postgres.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES ('acme', $1)", [Self.secretB])
            let id = try await h.client.enqueue(echo("acme", "deliver me", metadata: #"{"order":42}"#)).id
            let requests = try await withDelivery(h) { try await receiver.waitFor(1) }
            try #require(requests.count == 1)
            let request = requests[0]
            #expect(request.path == "/hook")
            let webhookID = try #require(request.id)
            #expect(webhookID.hasPrefix("msg_"))
            let timestamp = try #require(request.timestamp)
            #expect(abs((Int(timestamp) ?? 0) - Int(Date().timeIntervalSince1970)) < 60)
            let header = try #require(request.signature)
            #expect(header.split(separator: " ").count == 2)
            let verdicts = try await Self.pythonVerify(secrets: [Self.secretA, Self.secretB], id: webhookID, timestamp: timestamp,
                                                      body: request.body, header: header)
            #expect(verdicts == ["ok", "ok"])
            // Each signature is by a different secret.
            #expect(try await Self.pythonVerify(secrets: [Self.secretB], id: webhookID, timestamp: timestamp, body: request.body,
                                                header: header) == ["ok", "bad"])
            // The payload.
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(payload["type"] as? String == "job.succeeded")
            let data = try #require(payload["data"] as? [String: Any])
            #expect(data["id"] as? String == id.uuidString.lowercased())
            #expect(data["tenant"] as? String == "acme")
            #expect(data["lane"] as? String == "normal")
            #expect(data["provider"] as? String == "echo")
            #expect(data["model"] as? String == "echo")
            #expect((data["metadata"] as? [String: Any])?["order"] as? Int == 42)
            #expect(((data["output"] as? [String: Any])?["text"] as? String)?.contains("deliver me") == true)
            #expect((data["usage"] as? [String: Any])?["output_tokens"] as? Int ?? 0 > 0)
            #expect(data["error"] is NSNull)
            #expect(!String(decoding: request.body, as: UTF8.self).contains("whsec_"))
            let state = try await waitForDelivery(h, job: id, state: "delivered")
            #expect(state?.state == "delivered")
            #expect(state?.attempts == 1)
        }
    }

    @Test func deadAndCancelledJobsAreDeliveredWithTheirError() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver()
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/tenant-hook", secret: Self.secretA)
            // The job's own URL overrides the tenant's.
            var spec = echo("acme", "fail", metadata: #"{"echo_fail":"invalid_request"}"#)
            spec.webhookURL = base + "/job-hook"
            let dead = try await h.client.enqueue(spec).id
            let cancelled = try await h.client.enqueue(echo("acme", "later", runAt: Date().addingTimeInterval(3600))).id
            #expect(try await h.client.cancel(cancelled) == .cancelled)
            let requests = try await withDelivery(h) { try await receiver.waitFor(2) }
            try #require(requests.count == 2)
            let byType = Dictionary(uniqueKeysWithValues: try requests.map { request -> (String, (String, [String: Any])) in
                let payload = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
                return (payload["type"] as? String ?? "?", (request.path, try #require(payload["data"] as? [String: Any])))
            })
            let deadDelivery = try #require(byType["job.dead"])
            #expect(deadDelivery.0 == "/job-hook")
            #expect(deadDelivery.1["id"] as? String == dead.uuidString.lowercased())
            #expect((deadDelivery.1["error"] as? [String: Any])?["class"] as? String == "invalid_request")
            let cancelledDelivery = try #require(byType["job.cancelled"])
            #expect(cancelledDelivery.0 == "/tenant-hook")
            #expect(cancelledDelivery.1["id"] as? String == cancelled.uuidString.lowercased())
        }
    }

    // MARK: Outbox

    @Test func theOutboxRowIsWrittenWithTheTerminalStateAndOnlyThen() async throws {
        let h = try WorkerHarness.current
        try await tenant(h, "acme", url: "https://hooks.example.com/x", secret: Self.secretA)
        _ = try await h.postgres.query("INSERT INTO sluice.tenants (id) VALUES ('quiet')")
        let id = try await h.client.enqueue(echo("acme")).id
        let quiet = try await h.client.enqueue(echo("quiet")).id
        #expect(try await h.count("SELECT count(*) FROM sluice.webhook_deliveries") == 0)
        // A transaction that makes the job terminal and then rolls back leaves no outbox row.
        try? await h.postgres.withTransaction { connection in
            _ = try await connection.query("UPDATE sluice.jobs SET state = 'cancelled', finished_at = now() WHERE id = \(id)")
            #expect(try await connection.query("SELECT count(*) FROM sluice.webhook_deliveries").rows[0].decode(Int.self, at: 0) == 1)
            throw CancellationError()
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.webhook_deliveries") == 0)
        // Workers without a dispatcher: the rows wait in the outbox (none for the tenant without a webhook).
        try await h.withWorkers([try h.makeWorker()]) {
            _ = try await h.client.wait(for: id, timeout: .seconds(20))
            _ = try await h.client.wait(for: quiet, timeout: .seconds(20))
        }
        #expect(try await h.count("SELECT count(*) FROM sluice.webhook_deliveries WHERE job_id = $1 AND event = 'job.succeeded' AND state = 'pending'", [id]) == 1)
        #expect(try await h.count("SELECT count(*) FROM sluice.webhook_deliveries WHERE job_id = $1", [quiet]) == 0)
    }

    // MARK: Retries and failures

    @Test func aReceiverFailingTwiceGetsTheEventOnTheThirdAttemptWithTheSameID() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver { index, _ in .init(status: index < 2 ? 500 : 204) }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            let state = try await withDelivery(h) { try await waitForDelivery(h, job: id, state: "delivered") }
            #expect(state?.state == "delivered")
            #expect(state?.attempts == 3)
            let requests = receiver.requests
            #expect(requests.count == 3)
            #expect(Set(requests.compactMap(\.id)).count == 1)
            #expect(requests.map(\.body).allSatisfy { $0 == requests[0].body })
        }
    }

    @Test func afterTheScheduleTheDeliveryFailsVisiblyAndCanBeRedelivered() async throws {
        let h = try WorkerHarness.current
        let failing = Locked(true)
        let receiver = WebhookReceiver { _, _ in .init(status: failing.current ? 500 : 200) }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            try await withDelivery(h) {
                let state = try await waitForDelivery(h, job: id, state: "failed")
                #expect(state?.state == "failed")
                #expect(state?.attempts == 3)
                #expect(state?.status == 500)
                #expect(state?.error?.contains("no retries left") == true)
                #expect(receiver.requests.count == 3)
                let failed = try await JobStore(postgres: h.postgres).webhookDeliveries(.init(failedOnly: true))
                #expect(failed.map(\.jobID) == [id])
                // The receiver is fixed; the operator redelivers.
                failing.withLock { $0 = false }
                #expect(try await JobStore(postgres: h.postgres).redeliverWebhooks(failed.map(\.id)).count == 1)
                let again = try await waitForDelivery(h, job: id, state: "delivered")
                #expect(again?.state == "delivered")
            }
            #expect(receiver.requests.count == 4)
        }
    }

    @Test func a410DisablesTheEndpointAndLaterEventsAreNotSent() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver { _, _ in .init(status: 410) }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/gone", secret: Self.secretA)
            let first = try await h.client.enqueue(echo("acme")).id
            try await withDelivery(h) {
                let state = try await waitForDelivery(h, job: first, state: "failed")
                #expect(state?.status == 410)
                #expect(try await h.count("SELECT count(*) FROM sluice.webhook_endpoints WHERE tenant = 'acme' AND disabled_at IS NOT NULL") == 1)
                let second = try await h.client.enqueue(echo("acme")).id
                let skipped = try await waitForDelivery(h, job: second, state: "failed")
                #expect(skipped?.error?.contains("disabled") == true)
            }
            #expect(receiver.requests.count == 1)
            let tenant = try await JobStore(postgres: h.postgres).tenant("acme")
            #expect(tenant?.webhookDisabled?.contains("410") == true)
        }
    }

    @Test func anEndpointFailingLongerThanTheDisablePeriodIsDisabled() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver { _, _ in .init(status: 503) }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/down", secret: Self.secretA)
            var configuration = Self.configuration(schedule: [.zero, .milliseconds(300), .milliseconds(300), .milliseconds(300)])
            configuration.disableAfter = .milliseconds(400)
            let id = try await h.client.enqueue(echo("acme")).id
            try await withDelivery(h, configuration) {
                _ = try await waitForDelivery(h, job: id, state: "failed")
            }
            let reason = try await h.postgres.query("SELECT disabled_reason FROM sluice.webhook_endpoints WHERE tenant = 'acme'").first?
                .decode(String?.self, column: "disabled_reason")
            #expect(reason?.contains("failing since") == true)
        }
    }

    @Test func redirectsAreNotFollowed() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver { _, path in
            path == "/moved" ? .init(status: 302, headers: [("Location", "/elsewhere")]) : .init(status: 200)
        }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/moved", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            let state = try await withDelivery(h, Self.configuration(schedule: [.zero])) {
                try await waitForDelivery(h, job: id, state: "failed")
            }
            #expect(state?.status == 302)
            #expect(state?.error?.contains("redirect") == true)
            #expect(receiver.requests.map(\.path) == ["/moved"])
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver { index, _ in index == 0 ? .init(status: 429, headers: [("Retry-After", "1")]) : .init(status: 200) }
        try await receiver.run { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            // The schedule would wait an hour; Retry-After says 1 s.
            let state = try await withDelivery(h, Self.configuration(schedule: [.zero, .seconds(3600)])) {
                try await waitForDelivery(h, job: id, state: "delivered")
            }
            #expect(state?.state == "delivered")
            #expect(state?.attempts == 2)
        }
    }

    // MARK: The SSRF guard

    @Test(arguments: [
        ("127.0.0.1", "loopback"), ("127.0.0.2", "loopback"), ("::1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
        ("fc00::1", "private"), ("fd12:3456::1", "private"),
        ("169.254.1.1", "link_local"), ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("100.64.0.1", "shared"), ("100.127.255.254", "shared"),
        ("169.254.169.254", "metadata"), ("169.254.170.2", "metadata"), ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"), ("192.0.0.192", "metadata"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"), ("2002:c0a8:0101::1", "private"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("198.18.0.1", "reserved"), ("2001:db8::1", "reserved"),
    ])
    func refusedAddressClasses(address: String, expected: String) throws {
        let ip = try #require(WebhookAddressGuard.IPAddress(address))
        #expect(WebhookAddressGuard.refusedClass(of: ip) == expected)
        let error = #expect(throws: WebhookError.self) { try WebhookAddressGuard().check(ip, scheme: "https", host: address) }
        #expect(error?.code == .refusedAddress)
        #expect(error?.rule == expected)
    }

    @Test func publicAddressesPassOverHTTPSOnly() throws {
        let guardian = WebhookAddressGuard()
        for text in ["93.184.216.34", "8.8.8.8", "2606:4700::6810:85e5", "::ffff:93.184.216.34"] {
            let ip = try #require(WebhookAddressGuard.IPAddress(text))
            #expect(WebhookAddressGuard.refusedClass(of: ip) == nil, "\(text)")
            try guardian.check(ip, scheme: "https", host: text)
            let error = #expect(throws: WebhookError.self) { try guardian.check(ip, scheme: "http", host: text) }
            #expect(error?.rule == "https_required")
        }
    }

    @Test func theAllowListPermitsExactlyItsNetworks() async throws {
        let allowed = try WebhookAddressGuard.allowList("127.0.0.1/32, ::1/128,10.20.0.0/16")
        #expect(allowed.map(\.description) == ["127.0.0.1/32", "::1/128", "10.20.0.0/16"])
        let guardian = WebhookAddressGuard(allowed: allowed)
        for permitted in ["127.0.0.1", "::1", "10.20.255.1", "::ffff:127.0.0.1"] {
            try guardian.check(try #require(WebhookAddressGuard.IPAddress(permitted)), scheme: "http", host: permitted)
        }
        for refused in ["127.0.0.2", "10.21.0.1", "169.254.169.254", "::2"] {
            #expect(throws: WebhookError.self) {
                try guardian.check(try #require(WebhookAddressGuard.IPAddress(refused)), scheme: "http", host: refused)
            }
        }
        #expect(throws: WebhookError.self) { try WebhookAddressGuard.allowList("127.0.0.1/33") }
        #expect(throws: WebhookError.self) { try WebhookAddressGuard.allowList("localhost") }
        // Names resolve before the check: localhost is loopback, refused unless allowed.
        let endpoint = try WebhookAddressGuard.endpoint(of: "http://localhost:9/x")
        let refused = await #expect(throws: WebhookError.self) { _ = try await WebhookAddressGuard().permittedAddress(for: endpoint) }
        #expect(refused?.rule == "loopback")
        let permitted = try await guardian.permittedAddress(for: endpoint)
        #expect(["127.0.0.1", "::1"].contains(permitted.description))
        #expect(throws: WebhookError.self) { try WebhookAddressGuard.endpoint(of: "ftp://example.com/") }
        #expect(throws: WebhookError.self) { try WebhookAddressGuard.endpoint(of: "/relative") }
    }

    @Test func aLoopbackAddressOutsideTheAllowListReceivesNothing() async throws {
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver()
        try await receiver.run(host: "127.0.0.2") { base in
            try await tenant(h, "acme", url: base + "/hook", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            let state = try await withDelivery(h, Self.configuration(schedule: [.zero], allowed: ["127.0.0.1/32"])) {
                try await waitForDelivery(h, job: id, state: "failed")
            }
            #expect(state?.state == "failed")
            #expect(state?.status == nil)
            #expect(state?.error?.contains("127.0.0.2") == true)
            #expect(state?.error?.contains("loopback") == true)
            #expect(receiver.requests.isEmpty)
        }
    }

    @Test func aHostNameIsPinnedToTheCheckedAddress() async throws {
        // localhost resolves to loopback; the request connects to the checked address (the
        // receiver sees it) with the name in the Host header.
        let h = try WorkerHarness.current
        let receiver = WebhookReceiver()
        try await receiver.run { base in
            let port = base.split(separator: ":").last!
            try await tenant(h, "acme", url: "http://localhost:\(port)/named", secret: Self.secretA)
            let id = try await h.client.enqueue(echo("acme")).id
            // Only 127.0.0.1 is allowed: if localhost also resolves to ::1, that address is refused
            // and the checked 127.0.0.1 is the one connected to.
            let state = try await withDelivery(h, Self.configuration(allowed: ["127.0.0.1/32"])) {
                try await waitForDelivery(h, job: id, state: "delivered")
            }
            #expect(state?.state == "delivered")
            #expect(receiver.requests.map(\.path) == ["/named"])
        }
    }
}
