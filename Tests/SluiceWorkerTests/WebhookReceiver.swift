import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceSupport

/// A webhook receiver for tests: a Hummingbird server on a loopback address that records every
/// request (path, headers, body) and answers as `respond` says for the n-th request (0-based).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var path: String
        var id: String?
        var timestamp: String?
        var signature: String?
        var traceparent: String? = nil
        var body: [UInt8]
    }

    struct Answer: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
        /// Hold the answer until ``release()`` (or 20 s).
        var hang = false
    }

    let received = Locked<[Received]>([])
    let released = Locked(false)
    let respond: @Sendable (Int, String) -> Answer

    init(respond: @escaping @Sendable (Int, String) -> Answer = { _, _ in Answer() }) {
        self.respond = respond
    }

    var requests: [Received] { received.current }

    func release() { released.withLock { $0 = true } }

    /// Waits (at most `seconds`) until at least `count` requests arrived.
    func waitFor(_ count: Int, seconds: Double = 20) async throws -> [Received] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let now = received.current
            if now.count >= count { return now }
            try await Task.sleep(for: .milliseconds(50))
        }
        return received.current
    }

    /// Runs the receiver on `host` (ephemeral port) while `body` runs with its base URL.
    func run<T: Sendable>(host: String = "127.0.0.1", _ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.on("/**", method: .post) { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let index: Int = self.received.withLock { list in
                list.append(Received(path: request.uri.path, id: request.headers[HTTPField.Name("webhook-id")!],
                                     timestamp: request.headers[HTTPField.Name("webhook-timestamp")!],
                                     signature: request.headers[HTTPField.Name("webhook-signature")!],
                                     traceparent: request.headers[HTTPField.Name("traceparent")!],
                                     body: Array(buffer: bytes)))
                return list.count - 1
            }
            let answer = self.respond(index, request.uri.path)
            if answer.hang {
                for _ in 0..<200 where !self.released.current { try await Task.sleep(for: .milliseconds(100)) }
            }
            var headers = HTTPFields()
            for (name, value) in answer.headers { headers[HTTPField.Name(name)!] = value }
            return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: "ok")))
        }
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .error
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: 0), serverName: "receiver"),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let runner = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            runner.cancel()
            throw ReceiverFailed()
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body("http://\(host):\(port)"))
        } catch {
            result = .failure(error)
        }
        release()
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
        return try result.get()
    }

    struct ReceiverFailed: Error {}
}
