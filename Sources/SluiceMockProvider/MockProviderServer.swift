import Foundation
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle

/// The mock LLM provider: one HTTP/1.1 server (Hummingbird) speaking the OpenAI Chat
/// Completions and Anthropic Messages wire formats, with fault injection, rate limits and
/// counters. See `docs/design/SluiceMockProvider.md` for the contract.
///
/// Routes: `POST /v1/chat/completions` (OpenAI), `POST /v1/messages` (Anthropic),
/// `GET /admin/stats`, `POST /admin/reset`, `GET /health`.
///
/// Run it as a `Service` (inside a `ServiceGroup`; graceful shutdown closes the listener, lets
/// paced streams finish and ends stalled ones), with ``runService()`` (handles SIGTERM/SIGINT),
/// or in-process for tests with ``start(configuration:logger:)``.
public struct MockProviderServer: Service {
    /// The configuration the server was created with.
    public let configuration: MockProviderConfiguration
    let logger: Logger
    let state: MockProviderState
    let onListening: @Sendable (_ host: String, _ port: Int) async -> Void

    /// Creates a server (it binds when run).
    /// - Parameters:
    ///   - configuration: defaults and limits.
    ///   - logger: where request-level failures and lifecycle events go.
    ///   - onListening: called once the socket is bound, with the bound host and port (the real
    ///     port when ``MockProviderConfiguration/port`` is 0).
    public init(
        configuration: MockProviderConfiguration = .init(),
        logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.state = MockProviderState(configuration: configuration)
        self.onListening = onListening
    }

    /// The counters now (the same as `GET /admin/stats`).
    public var stats: MockProviderStats { state.snapshot }

    /// Zeroes the counters, the rate-limit windows and the `fail_times` counters (as `POST /admin/reset`).
    public func reset() { state.reset() }

    /// Serves until the task is cancelled or graceful shutdown is triggered.
    public func run() async throws {
        try await makeApplication().run()
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    public func runService() async throws {
        try await makeApplication().runService()
    }

    func makeApplication() -> some ApplicationProtocol {
        let router = Router(context: MockRequestContext.self)
        let responder = MockCompletionResponder(state: state, logger: logger)
        let state = self.state
        router.post("/v1/chat/completions") { request, context in
            await responder.respond(format: .openAI, request: request, context: context)
        }
        router.post("/v1/messages") { request, context in
            await responder.respond(format: .anthropic, request: request, context: context)
        }
        router.get("/admin/stats") { _, _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = (try? encoder.encode(state.snapshot)) ?? Data("{}".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.post("/admin/reset") { _, _ in
            state.reset()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"ok\":true}")))
        }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        let host = configuration.host
        let onListening = self.onListening
        let logger = self.logger
        return Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [MockConnectionHandler()])),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: nil, backlog: configuration.backlog),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("mock provider listening", metadata: ["host": "\(host)", "port": "\(port)"])
                await onListening(host, port)
            },
            logger: logger
        )
    }

    /// Starts a server in this process and returns once it is listening; for tests (use port 0).
    ///
    /// ```swift
    /// let mock = try await MockProviderServer.start(configuration: .init(port: 0), logger: logger)
    /// defer { Task { await mock.stop() } }   // or: await mock.stop() at the end
    /// // OPENAI_BASE_URL = mock.openAIBaseURL, ANTHROPIC_BASE_URL = mock.baseURL
    /// ```
    /// - Throws: ``MockProviderError`` with code `.startFailed` if the server cannot bind.
    public static func start(configuration: MockProviderConfiguration = .init(port: 0), logger: Logger) async throws -> RunningMockProvider {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = MockProviderServer(configuration: configuration, logger: logger) { _, port in
            continuation.yield(port)
        }
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: server)], logger: logger)
        )
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            do {
                try await task.value
            } catch {
                throw MockProviderError(.startFailed, "mock provider could not start on \(configuration.host):\(configuration.port): \(error)", underlying: error)
            }
            throw MockProviderError(.startFailed, "mock provider stopped before listening")
        }
        return RunningMockProvider(host: configuration.host, port: port, server: server, group: group, task: task)
    }
}
