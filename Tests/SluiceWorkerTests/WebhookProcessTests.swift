import Foundation
import Sluice
import SluicePostgres
import SluiceTestScope
import SluiceTestSupport
import Testing

/// The outbox across a crash: `sluice worker` processes, one SIGKILLed while it delivers.
@Suite("Webhook delivery across a crash", .serialized, .workerDatabase)
struct WebhookProcessTests {
    @Test func aWorkerKilledMidDeliveryLeavesTheEventToBeDeliveredLaterWithTheSameID() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: WorkerProcessTests.sluiceBinary.path), "build the package first")
        let h = try WorkerHarness.current
        // The first request hangs (the dispatcher is killed while waiting for it); later ones succeed.
        let receiver = WebhookReceiver { index, _ in .init(status: 200, hang: index == 0) }
        try await receiver.run { base in
            _ = try await h.postgres.query("UPDATE sluice.settings SET allow_http_webhooks = true")
            _ = try await h.postgres.query("INSERT INTO sluice.tenants (id, webhook_url) VALUES ('acme', $1)", [base + "/hook"])
            _ = try await h.postgres.query("INSERT INTO sluice.tenant_secrets (tenant, secret) VALUES ('acme', $1)", [WebhookTests.secretA])
            var environment = ProcessInfo.processInfo.environment
            environment["SLUICE_DATABASE_URL"] = h.url
            environment["SLUICE_WEBHOOK_ALLOW"] = "127.0.0.1/32"
            let supervisor = try ChildProcess.spawn(
                WorkerProcessTests.sluiceBinary.path,
                ["worker", "--processes", "1", "--concurrency", "8", "--lease-seconds", "1.5", "--poll-ms", "100",
                 "--webhook-lease-seconds", "3", "--webhook-timeout-seconds", "2.5", "--webhook-schedule", "0,200ms,200ms",
                 "--log-level", "warning"],
                environment: environment, standardError: .capture)
            let victim = try await WorkerProcessTests().workerPIDs(h, count: 1)[0]
            let id = try await h.client.enqueue(echo("acme", "crash")).id
            let job = try await h.client.wait(for: id, timeout: .seconds(20))
            #expect(job.state == .succeeded)
            // The state change is committed with its outbox row; the delivery is in flight.
            let first = try await receiver.waitFor(1)
            try #require(first.count == 1)
            kill(victim, SIGKILL)
            // The supervisor starts a new process; once the claim's lease has passed it sends the
            // same event again, with the same webhook-id.
            let requests = try await receiver.waitFor(2, seconds: 30)
            try #require(requests.count >= 2)
            #expect(requests[1].id == requests[0].id)
            #expect(requests[1].body == requests[0].body)
            var state = ""
            for _ in 0..<200 {
                state = try await h.postgres.query("SELECT state FROM sluice.webhook_deliveries WHERE job_id = $1", [id]).rows[0]
                    .decode(String.self, at: 0)
                if state == "delivered" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(state == "delivered")
            supervisor.send(SIGTERM)
            let status = await supervisor.waitForExit(timeout: .seconds(30))
            #expect(status == .exited(0), "\(supervisor.standardError())")
        }
    }
}
