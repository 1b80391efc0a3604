import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceSupport

/// The demo's webhook endpoint, as a tenant would run it: a Hummingbird server on loopback that
/// checks every delivery's Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the tenant's
/// `whsec_` secret) and counts what arrived.
final class DemoWebhookReceiver: Sendable {
    struct Counts: Sendable {
        var received = 0
        var verified = 0
        var badSignature = 0
        /// Deliveries whose `webhook-id` had been received before (at-least-once delivery repeats them).
        var repeated = 0
        var byTenant: [String: Int] = [:]
        var seen: Set<String> = []
    }

    let counts = Locked(Counts())
    let secrets: Locked<[String: [UInt8]]> = Locked([:])

    /// Registers `tenant`'s signing secret (`whsec_…` as printed by `sluice tenants create`).
    func trust(tenant: String, secret: String) throws {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else {
            throw DemoError("sluice tenants create printed a secret that is not whsec_ + base64")
        }
        secrets.withLock { $0[tenant] = Array(key) }
    }

    /// Whether `header` carries a valid signature of `body` for `tenant`.
    func verify(tenant: String, id: String, timestamp: String, header: String, body: [UInt8]) -> Bool {
        guard let key = secrets.current[tenant] else { return false }
        var content = Array("\(id).\(timestamp).".utf8)
        content += body
        let expected = Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))).base64EncodedString()
        return header.split(separator: " ").contains { $0 == "v1,\(expected)" }
    }

    /// Starts the server on an ephemeral loopback port; returns its base URL and the task that runs it.
    func start(logger: Logger) async throws -> (url: String, group: ServiceGroup, task: Task<Void, any Error>) {
        let router = Router()
        router.post("/hooks/:tenant") { request, context -> Response in
            let tenant = context.parameters.get("tenant") ?? ""
            let body = Array(buffer: try await request.body.collect(upTo: 4 << 20))
            let id = request.headers[HTTPField.Name("webhook-id")!] ?? ""
            let timestamp = request.headers[HTTPField.Name("webhook-timestamp")!] ?? ""
            let signature = request.headers[HTTPField.Name("webhook-signature")!] ?? ""
            let valid = self.verify(tenant: tenant, id: id, timestamp: timestamp, header: signature, body: body)
            self.counts.withLock { counts in
                counts.received += 1
                if valid { counts.verified += 1 } else { counts.badSignature += 1 }
                if !counts.seen.insert(id).inserted { counts.repeated += 1 }
                counts.byTenant[tenant, default: 0] += 1
            }
            return Response(status: valid ? .noContent : .unauthorized)
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "demo-receiver"),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw DemoError("the webhook receiver did not start")
        }
        return ("http://127.0.0.1:\(port)", group, task)
    }
}
