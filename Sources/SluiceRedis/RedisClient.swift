public import Logging
public import ServiceLifecycle

/// A small pool of ``RedisConnection``s with the same command methods.
///
/// Connections are opened lazily, up to ``Configuration/maxConnections``. A connection that
/// failed (I/O error, `CLIENT KILL`, server restart, command timeout) is dropped and the next
/// call gets a fresh one. A pooled connection whose socket the server closed while it sat idle
/// is detected *before* anything is written, and the call transparently moves to another
/// connection — so a command is never retried after it may have reached the server.
///
/// Run it in a `ServiceGroup` (``run()`` waits for graceful shutdown, then closes the pool), or
/// call ``shutdown()`` yourself.
public final class RedisClient: Service, Sendable {
    /// Pool settings.
    public struct Configuration: Sendable, Hashable {
        /// Maximum number of open connections (each has its own OS thread). Default 8.
        public var maxConnections: Int
        /// How long a call waits for a free connection before ``RedisError/Code/poolTimeout``. Default 2 s.
        public var acquireTimeout: Duration

        /// Creates pool settings.
        public init(maxConnections: Int = 8, acquireTimeout: Duration = .seconds(2)) {
            self.maxConnections = maxConnections
            self.acquireTimeout = acquireTimeout
        }
    }

    /// The server configuration every pooled connection uses.
    public let configuration: RedisConfiguration
    /// The pool settings.
    public let poolConfiguration: Configuration
    private let pool: RedisConnectionPool
    let logger: Logger

    /// Creates a client; no connection is opened until the first call.
    public init(configuration: RedisConfiguration, pool: Configuration = .init(), logger: Logger) {
        self.configuration = configuration
        self.poolConfiguration = pool
        self.logger = logger
        self.pool = RedisConnectionPool(configuration: configuration, maxConnections: pool.maxConnections, logger: logger)
    }

    /// Waits until graceful shutdown (or cancellation, or ``shutdown()``), then closes the pool.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [pool] in await pool.waitUntilShutdown() }
        await shutdown()
    }

    /// Closes every connection; later calls throw ``RedisError/Code/connectionClosed``.
    public func shutdown() async {
        await pool.shutdown()
    }

    /// See ``RedisConnection/command(_:)``: an error reply is thrown as ``RedisError/Code/server``.
    public func command(_ args: [String]) async throws(RedisError) -> RedisValue {
        try await withPooledConnection { connection throws(RedisError) in try await connection.command(args) }
    }

    /// See ``RedisConnection/command(bytes:)``.
    public func command(bytes args: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await withPooledConnection { connection throws(RedisError) in try await connection.command(bytes: args) }
    }

    /// See ``RedisConnection/send(_:)``: an error reply is returned as ``RedisValue/error(_:)``.
    public func send(_ args: [String]) async throws(RedisError) -> RedisValue {
        try await withPooledConnection { connection throws(RedisError) in try await connection.send(args) }
    }

    /// See ``RedisConnection/pipeline(_:)``: one round trip on one connection, replies in order.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try await withPooledConnection { connection throws(RedisError) in try await connection.pipeline(commands) }
    }

    /// See ``RedisConnection/eval(_:keys:args:)``: `EVALSHA`, with a transparent reload on `NOSCRIPT`.
    public func eval(_ script: RedisScript, keys: [String], args: [String]) async throws(RedisError) -> RedisValue {
        try await withPooledConnection { connection throws(RedisError) in try await connection.eval(script, keys: keys, args: args) }
    }

    /// Leases one connection for several calls (e.g. `WATCH`/`MULTI`/`EXEC`). The connection
    /// goes back to the pool afterwards, or is dropped if it broke. Leave no `MULTI` open.
    public func withConnection<T: Sendable>(_ body: @Sendable (RedisConnection) async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now.advanced(by: poolConfiguration.acquireTimeout)
        let connection = try await pool.acquire(deadline: deadline)
        do {
            let value = try await body(connection)
            await pool.release(connection, reusable: await connection.isOpen)
            return value
        } catch {
            await pool.release(connection, reusable: await connection.isOpen)
            throw error
        }
    }

    /// Pool statistics: connections open or opening, idle, and callers waiting.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        get async {
            let c = await pool.counts
            return (c.total, c.idle, c.waiting)
        }
    }

    /// Runs `body` on a pooled connection. Errors that broke the connection drop it; a failure
    /// known to have happened before anything was written (a connection the server closed
    /// while idle) is retried on another connection.
    private func withPooledConnection<T: Sendable>(
        _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let deadline = ContinuousClock.now.advanced(by: poolConfiguration.acquireTimeout)
        var attempts = 0
        while true {
            let connection = try await pool.acquire(deadline: deadline)
            do throws(RedisError) {
                let value = try await body(connection)
                await pool.release(connection, reusable: true)
                return value
            } catch {
                let broken = error.code == .connectionClosed || error.code == .timeout || error.code == .protocolError
                await pool.release(connection, reusable: !broken)
                attempts += 1
                if error.notSent, error.code == .connectionClosed, attempts <= poolConfiguration.maxConnections {
                    continue
                }
                throw error
            }
        }
    }
}
