public import Logging
public import ServiceLifecycle
import SluiceSupport

/// A bounded pool of ``PostgresConnection``s; a `ServiceLifecycle.Service`.
///
/// Works without ``run()``: connections open lazily on first use. ``run()`` only waits for
/// graceful shutdown and then closes every connection (``shutdown()`` does the same directly).
///
/// - At most `maxConnections` connections exist; callers beyond that wait FIFO and fail with
///   `.poolTimeout` after `acquireTimeout`.
/// - Before an idle connection is handed out, a zero-timeout `poll()` on its socket (no thread
///   hop) detects a server that terminated the session or restarted; such connections are
///   replaced, so the first query after `pg_terminate_backend` or a restart succeeds.
///   A connection that breaks *during* a statement makes that call throw
///   `.connectionClosed` (the statement may have run, so it is never retried) and is
///   discarded; the following call gets a fresh connection.
/// - A connection returned inside a transaction (e.g. the body ran `BEGIN` by hand and threw)
///   is closed rather than reused. Cancelling the task that holds a connection returns it.
public final class PostgresClient: Service, Sendable {
    /// Pool settings.
    public struct Configuration: Sendable {
        /// Maximum number of open connections. Default 10.
        public var maxConnections: Int
        /// How long a caller waits for a free connection before `.poolTimeout`. Default 10 s.
        public var acquireTimeout: Duration
        /// A connection idle for longer than this is checked with `SELECT 1` before reuse
        /// (`nil`: only the socket probe). Default 60 s.
        public var idleHealthCheck: Duration?

        /// Creates pool settings.
        public init(maxConnections: Int = 10, acquireTimeout: Duration = .seconds(10), idleHealthCheck: Duration? = .seconds(60)) {
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
            self.idleHealthCheck = idleHealthCheck
        }
    }

    /// A snapshot of the pool's size.
    public struct Statistics: Sendable, Equatable {
        /// Connections open or being opened.
        public var open: Int
        /// Open connections not lent out.
        public var idle: Int
        /// Callers waiting for a connection.
        public var waiting: Int
    }

    struct IdleConnection {
        let connection: PostgresConnection
        let since: ContinuousClock.Instant
    }

    struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<PostgresConnection?, any Error>
        let timeout: Task<Void, Never>
    }

    struct State {
        var idle: [IdleConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var cancelledWaiters: Set<Int> = []
        var nextID = 0
        var closed = false
        var listeners: [Int: ListenerHandle] = [:]
    }

    /// How to reach the server.
    public let configuration: PostgresConfiguration
    /// Pool settings.
    public let poolConfiguration: Configuration
    let logger: Logger
    let state = Locked(State())

    /// Creates the pool; no connection is opened until one is needed.
    public init(configuration: PostgresConfiguration, pool: Configuration = .init(), logger: Logger) {
        self.configuration = configuration
        self.poolConfiguration = pool
        self.logger = logger
    }

    /// Waits for graceful shutdown (or cancellation), then closes all connections.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes idle connections, fails waiters with `.poolClosed`, stops listeners; connections
    /// in use are closed when they come back. Later calls fail with `.poolClosed`.
    public func shutdown() async {
        let (idle, waiters, listeners) = state.withLock { s in
            s.closed = true
            defer {
                s.idle = []
                s.waiters = []
                s.listeners = [:]
            }
            return (s.idle, s.waiters, s.listeners)
        }
        for waiter in waiters {
            waiter.timeout.cancel()
            waiter.continuation.resume(throwing: PostgresError(code: .poolClosed, message: "the PostgreSQL pool was shut down"))
        }
        for listener in listeners.values { listener.stop() }
        for item in idle {
            await item.connection.close()
        }
        state.withLock { $0.open -= idle.count }
    }

    /// The current pool size.
    public var statistics: Statistics {
        state.withLock { Statistics(open: $0.open, idle: $0.idle.count, waiting: $0.waiters.count) }
    }

    /// Lends a connection to `body` and takes it back afterwards (also when `body` throws or
    /// the task is cancelled). A connection-level error discards the connection.
    public func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection, discard: false)
            return value
        } catch {
            let broken = (error as? PostgresError)?.isConnectionLevel ?? false
            await release(connection, discard: broken)
            throw error
        }
    }

    /// Runs one statement on a pooled connection. See ``PostgresConnection/query(_:_:prepared:)``.
    public func query(_ sql: String, _ binds: [(any PostgresEncodable)?], prepared: Bool = false) async throws -> PostgresResult {
        try await withConnection { connection in
            try await connection.query(sql, binds, prepared: prepared)
        }
    }

    /// Runs `body` in a transaction on a pooled connection. See ``PostgresConnection/withTransaction(_:)``.
    public func withTransaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction(body)
        }
    }

    // MARK: Acquire / release

    enum AcquireAction {
        case closed
        case reuse(IdleConnection)
        case create
        case wait
    }

    func acquire() async throws -> PostgresConnection {
        while true {
            if Task.isCancelled {
                throw PostgresError(code: .cancelled, message: "the task was cancelled while acquiring a connection")
            }
            let maxConnections = poolConfiguration.maxConnections
            let action = state.withLock { s -> AcquireAction in
                if s.closed { return .closed }
                if let idle = s.idle.popLast() { return .reuse(idle) }
                if s.open < maxConnections {
                    s.open += 1
                    return .create
                }
                return .wait
            }
            switch action {
            case .closed:
                throw PostgresError(code: .poolClosed, message: "the PostgreSQL pool was shut down")
            case .reuse(let idle):
                if await isHealthy(idle) { return idle.connection }
                logger.info("postgres: discarding a dead pooled connection", metadata: ["pg.pid": "\(idle.connection.backendPID)"])
                await discard(idle.connection)
            case .create:
                return try await createConnection()
            case .wait:
                if let handedOver = try await waitForConnection() { return handedOver }
                return try await createConnection()  // a slot was reserved for us
            }
        }
    }

    private func isHealthy(_ idle: IdleConnection) async -> Bool {
        switch idle.connection.idleProbe() {
        case false?: return false
        case nil: if await !idle.connection.checkIncoming() { return false }
        case true?: break
        }
        if let limit = poolConfiguration.idleHealthCheck, idle.since.duration(to: .now) > limit {
            do {
                _ = try await idle.connection.query("SELECT 1")
            } catch {
                return false
            }
        }
        return true
    }

    private func createConnection() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(configuration: configuration, logger: logger)
        } catch {
            releaseSlot()
            throw error
        }
    }

    /// Gives up one slot; a waiter (if any) inherits it and opens a connection itself.
    private func releaseSlot() {
        let waiter = state.withLock { s -> Waiter? in
            if !s.closed, !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.open -= 1
            return nil
        }
        if let waiter {
            waiter.timeout.cancel()
            waiter.continuation.resume(returning: nil)
        }
    }

    private func discard(_ connection: PostgresConnection) async {
        await connection.close()
        releaseSlot()
    }

    private func release(_ connection: PostgresConnection, discard broken: Bool) async {
        guard !broken, connection.isReusable else {
            await discard(connection)
            return
        }
        enum Next { case handOver(Waiter), parked, close }
        let next = state.withLock { s -> Next in
            if s.closed { return .close }
            if !s.waiters.isEmpty { return .handOver(s.waiters.removeFirst()) }
            s.idle.append(IdleConnection(connection: connection, since: .now))
            return .parked
        }
        switch next {
        case .handOver(let waiter):
            waiter.timeout.cancel()
            waiter.continuation.resume(returning: connection)
        case .parked:
            break
        case .close:
            await connection.close()
            state.withLock { $0.open -= 1 }
        }
    }

    /// Queues FIFO. Returns a connection handed over by `release`, or nil when a slot was
    /// reserved for the caller to open a new connection.
    private func waitForConnection() async throws -> PostgresConnection? {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        let timeout = poolConfiguration.acquireTimeout
        let size = poolConfiguration.maxConnections
        defer { state.withLock { _ = $0.cancelledWaiters.remove(id) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection?, any Error>) in
                let timer = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled else { return }
                    self?.failWaiter(
                        id,
                        PostgresError(
                            code: .poolTimeout,
                            message: "all \(size) connections busy for \(formatDuration(timeout)) (PostgreSQL pool acquire timeout)"))
                }
                let enqueued = state.withLock { s -> Bool in
                    if s.cancelledWaiters.remove(id) != nil { return false }
                    if s.closed { return false }
                    s.waiters.append(Waiter(id: id, continuation: continuation, timeout: timer))
                    return true
                }
                if !enqueued {
                    timer.cancel()
                    let closed = state.withLock { $0.closed }
                    continuation.resume(
                        throwing: closed
                            ? PostgresError(code: .poolClosed, message: "the PostgreSQL pool was shut down")
                            : PostgresError(code: .cancelled, message: "the task was cancelled while waiting for a connection"))
                }
            }
        } onCancel: {
            self.failWaiter(id, PostgresError(code: .cancelled, message: "the task was cancelled while waiting for a connection"), cancelled: true)
        }
    }

    private func failWaiter(_ id: Int, _ error: PostgresError, cancelled: Bool = false) {
        let waiter = state.withLock { s -> Waiter? in
            if let index = s.waiters.firstIndex(where: { $0.id == id }) { return s.waiters.remove(at: index) }
            if cancelled { s.cancelledWaiters.insert(id) }
            return nil
        }
        if let waiter {
            waiter.timeout.cancel()
            waiter.continuation.resume(throwing: error)
        }
    }
}

func formatDuration(_ d: Duration) -> String {
    let (seconds, atto) = d.components
    if atto == 0 { return "\(seconds) s" }
    let ms = seconds * 1000 + atto / 1_000_000_000_000_000
    return "\(ms) ms"
}
