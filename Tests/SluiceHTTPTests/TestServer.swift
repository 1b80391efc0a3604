import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import SluiceHTTP
import SluiceTestScope
import Testing

/// Records server-side observations (e.g. "the client closed the connection") for assertions.
actor ServerEvents {
    private(set) var closed: Set<String> = []
    private(set) var started: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func markStarted(_ id: String) { started.insert(id) }

    func markClosed(_ id: String) {
        closed.insert(id)
        for waiter in waiters.removeValue(forKey: id) ?? [] { waiter.resume() }
    }

    /// Waits until `id` is marked closed.
    func waitClosed(_ id: String) async {
        if closed.contains(id) { return }
        await withCheckedContinuation { waiters[id, default: []].append($0) }
    }
}

struct TestFailure: Error {}

/// A Hummingbird server on 127.0.0.1 (ephemeral port) with the routes the tests use.
enum TestServer {
    static func router(events: ServerEvents) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/hello") { _, _ in "hello" }
        router.head("/hello") { _, _ in Response(status: .ok, headers: [.contentLength: "5"]) }
        router.on("/echo", method: .post) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 10 << 20)
            var headers = HTTPFields()
            headers[HTTPField.Name("x-echo-method")!] = request.method.rawValue
            if let value = request.headers[HTTPField.Name("x-test")!] {
                headers[HTTPField.Name("X-Echo-Test")!] = value
            }
            headers.append(HTTPField(name: HTTPField.Name("x-multi")!, value: "one"))
            headers.append(HTTPField(name: HTTPField.Name("x-multi")!, value: "two"))
            return Response(status: .created, headers: headers, body: .init(byteBuffer: body))
        }
        router.on("/echo", method: .put) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 10 << 20)
            return Response(status: .ok, headers: [.init("x-echo-method")!: request.method.rawValue], body: .init(byteBuffer: body))
        }
        router.get("/status/:code") { _, context -> Response in
            let code = context.parameters.get("code", as: Int.self) ?? 500
            return Response(status: .init(code: code), body: .init(byteBuffer: ByteBuffer(string: "status \(code)")))
        }
        // n chunks "<id>:<i>\n", `delay` ms apart (the first after `first` ms).
        router.get("/stream") { request, _ -> Response in
            let n = request.uri.queryParameters.get("n", as: Int.self) ?? 5
            let delay = request.uri.queryParameters.get("delay", as: Int.self) ?? 50
            let first = request.uri.queryParameters.get("first", as: Int.self) ?? 0
            let id = request.uri.queryParameters.get("id") ?? "x"
            return Response(status: .ok, body: ResponseBody { writer in
                if first > 0 { try await Task.sleep(for: .milliseconds(first)) }
                for i in 0..<n {
                    if i > 0 && delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    try await writer.write(ByteBuffer(string: "\(id):\(i)\n"))
                }
                try await writer.finish(nil)
            })
        }
        // Sleeps before sending anything (no head).
        router.get("/slow-head") { request, _ -> Response in
            let delay = request.uri.queryParameters.get("delay", as: Int.self) ?? 1000
            try await Task.sleep(for: .milliseconds(delay))
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "late")))
        }
        // `n` chunks then a stall of `stall` ms, then one more chunk.
        router.get("/stall") { request, _ -> Response in
            let n = request.uri.queryParameters.get("n", as: Int.self) ?? 2
            let stall = request.uri.queryParameters.get("stall", as: Int.self) ?? 5000
            return Response(status: .ok, body: ResponseBody { writer in
                for i in 0..<n { try await writer.write(ByteBuffer(string: "chunk \(i)\n")) }
                try await Task.sleep(for: .milliseconds(stall))
                try await writer.write(ByteBuffer(string: "late\n"))
                try await writer.finish(nil)
            })
        }
        // `mb` MiB of a repeating byte pattern in 64 KiB writes.
        router.get("/big") { request, _ -> Response in
            let mb = request.uri.queryParameters.get("mb", as: Int.self) ?? 1
            return Response(status: .ok, headers: [.contentLength: "\(mb << 20)"], body: ResponseBody(contentLength: mb << 20) { writer in
                var block = ByteBuffer()
                for i in 0..<65536 { block.writeInteger(UInt8(truncatingIfNeeded: i % 251)) }
                for _ in 0..<(mb * 16) { try await writer.write(block) }
                try await writer.finish(nil)
            })
        }
        // Streams until the client goes away, then records the closure.
        router.get("/forever") { request, _ -> Response in
            let id = request.uri.queryParameters.get("id") ?? "x"
            await events.markStarted(id)
            return Response(status: .ok, body: ResponseBody { writer in
                do {
                    while true {
                        try await writer.write(ByteBuffer(string: "tick\n"))
                        try await Task.sleep(for: .milliseconds(20))
                    }
                } catch {
                    await events.markClosed(id)
                    throw error
                }
            })
        }
        // Sends two chunks and then fails, which makes the server close the connection mid-body.
        router.get("/cut") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "part 1\n"))
                try await Task.sleep(for: .milliseconds(50))
                try await writer.write(ByteBuffer(string: "part 2\n"))
                try await Task.sleep(for: .milliseconds(50))
                throw TestFailure()
            })
        }
        return router
    }

    /// Runs the server for the duration of `body`, passing its base URL.
    static func with<R: Sendable>(
        events: ServerEvents = ServerEvents(),
        client: HTTPClient? = nil,
        _ body: @Sendable (String) async throws -> R
    ) async throws -> R {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-server")
        logger.logLevel = .error
        let app = Application(
            router: router(events: events),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "test"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let server = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw TestFailure() }
            // The client stops before the server, so no connection arrives while the server
            // shuts down. The server shuts down gracefully: its handlers see their connections
            // close and end. (Cancelling it while a response was still being written, as
            // after a failed test with transfers in flight, trapped in NIOAsyncWriter's deinit
            // and took the whole test run down.)
            let result: Result<R, any Error>
            do {
                result = .success(try await body("http://127.0.0.1:\(port)"))
            } catch {
                result = .failure(error)
            }
            await client?.shutdown()
            await server.triggerGracefulShutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }
}

/// An HTTP client owned by the test's scope (`.testScope`): shut down when the test ends.
func makeClient(_ configure: (inout HTTPClient.Configuration) -> Void = { _ in }) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configure(&configuration)
    var logger = Logger(label: "test-http")
    logger.logLevel = .info
    let client = HTTPClient(configuration: configuration, logger: logger)
    if let scope = TestScope.current {
        scope.onExit("HTTP client") { await client.shutdown() }
    } else {
        Issue.record(MissingTestScope(what: "an HTTP client"))
    }
    return client
}
