import Logging

/// The connection pool behind ``RedisClient``: idle connections, a cap on open ones, and a
/// FIFO of callers waiting for a slot (each with its own deadline and cancellation).
///
/// Bookkeeping only; the connections' I/O never runs here (each connection has its own thread).
actor RedisConnectionPool {
    private enum WaitResult: Sendable {
        case connection(RedisConnection)
        case retry  // a slot was freed: try to open a connection
        case failed(RedisError)
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<WaitResult, Never>
        let timer: Task<Void, Never>
    }

    private let configuration: RedisConfiguration
    private let maxConnections: Int
    private let logger: Logger
    private var idle: [RedisConnection] = []
    /// Connections open or being opened, leased or idle.
    private var total = 0
    private var waiters: [Waiter] = []
    private var nextWaiterID: UInt64 = 0
    private var isShutdown = false
    private var shutdownWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]

    init(configuration: RedisConfiguration, maxConnections: Int, logger: Logger) {
        self.configuration = configuration
        self.maxConnections = max(1, maxConnections)
        self.logger = logger
    }

    /// Statistics for tests and metrics: (open or opening, idle, waiting).
    var counts: (total: Int, idle: Int, waiting: Int) { (total, idle.count, waiters.count) }

    /// An idle connection, a new one if below the cap, or the next one released — whichever
    /// comes first, before `deadline`.
    func acquire(deadline: ContinuousClock.Instant) async throws(RedisError) -> RedisConnection {
        while true {
            if isShutdown { throw closedError() }
            if Task.isCancelled {
                var error = RedisError(code: .cancelled, message: "cancelled while waiting for a Redis connection", server: configuration.serverLabel)
                error.notSent = true
                throw error
            }
            if let connection = idle.popLast() { return connection }
            if total < maxConnections {
                total += 1
                let connection: RedisConnection
                do {
                    connection = try await RedisConnection.connect(configuration: configuration, logger: logger)
                } catch {
                    total -= 1
                    wakeOneWaiter()  // let the next waiter try (or fail) on its own
                    throw error
                }
                if isShutdown {
                    total -= 1
                    await connection.close()
                    throw closedError()
                }
                return connection
            }
            switch await wait(deadline: deadline) {
            case .connection(let connection): return connection
            case .retry: continue
            case .failed(let error): throw error
            }
        }
    }

    /// Returns a leased connection. A connection that is no longer usable (I/O error, timeout)
    /// is dropped and its slot handed to the next waiter.
    func release(_ connection: RedisConnection, reusable: Bool) async {
        if !reusable || isShutdown {
            total -= 1
            wakeOneWaiter()
            await connection.close()
            return
        }
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            waiter.timer.cancel()
            waiter.continuation.resume(returning: .connection(connection))
        } else {
            idle.append(connection)
        }
    }

    /// Closes idle connections, fails waiters with `connectionClosed`; leased connections are
    /// closed when they come back. Wakes ``waitUntilShutdown()``.
    func shutdown() async {
        guard !isShutdown else { return }
        isShutdown = true
        let pending = waiters
        waiters.removeAll()
        for waiter in pending {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: .failed(closedError()))
        }
        let connections = idle
        idle.removeAll()
        total -= connections.count
        for connection in connections { await connection.close() }
        for (_, continuation) in shutdownWaiters { continuation.resume() }
        shutdownWaiters.removeAll()
    }

    /// Suspends until ``shutdown()`` or until the calling task is cancelled.
    func waitUntilShutdown() async {
        if isShutdown { return }
        let id = nextWaiterID
        nextWaiterID += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if isShutdown || Task.isCancelled {
                    continuation.resume()
                } else {
                    shutdownWaiters[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.endShutdownWait(id) }
        }
    }

    private func endShutdownWait(_ id: UInt64) {
        shutdownWaiters.removeValue(forKey: id)?.resume()
    }

    // MARK: Waiting

    private func wait(deadline: ContinuousClock.Instant) async -> WaitResult {
        let id = nextWaiterID
        nextWaiterID += 1
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WaitResult, Never>) in
                if Task.isCancelled {
                    continuation.resume(returning: .failed(cancelledError()))
                    return
                }
                let timer = Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if Task.isCancelled { return }
                    self.resolve(id, with: .failed(self.poolTimeoutError()))
                }
                waiters.append(Waiter(id: id, continuation: continuation, timer: timer))
            }
        } onCancel: {
            Task { await self.resolve(id, with: .failed(self.cancelledError())) }
        }
    }

    private func resolve(_ id: UInt64, with result: WaitResult) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        waiter.timer.cancel()
        waiter.continuation.resume(returning: result)
    }

    private func wakeOneWaiter() {
        guard !waiters.isEmpty else { return }
        let waiter = waiters.removeFirst()
        waiter.timer.cancel()
        waiter.continuation.resume(returning: isShutdown ? .failed(closedError()) : .retry)
    }

    private func closedError() -> RedisError {
        var error = RedisError(code: .connectionClosed, message: "the Redis client has been shut down", server: configuration.serverLabel)
        error.notSent = true
        return error
    }

    private nonisolated func cancelledError() -> RedisError {
        var error = RedisError(code: .cancelled, message: "cancelled while waiting for a Redis connection", server: configuration.serverLabel)
        error.notSent = true
        return error
    }

    private nonisolated func poolTimeoutError() -> RedisError {
        var error = RedisError(
            code: .poolTimeout, message: "no Redis connection became free within the pool's acquire timeout (\(maxConnections) in use)",
            server: configuration.serverLabel
        )
        error.notSent = true
        return error
    }
}
