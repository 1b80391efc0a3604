import Logging
import SluiceSupport
import Foundation

extension PostgresClient {
    /// Listens on `channels` on a dedicated connection (not from the pool) and yields the
    /// notifications until the consumer stops iterating (then it UNLISTENs and closes).
    ///
    /// The listening thread sleeps in `poll()` on the socket plus a wake-up pipe — no timer
    /// loop — so delivery takes well under a millisecond on loopback. The connection uses
    /// TCP keepalives so a vanished server is noticed. After a connection loss it reconnects
    /// (backoff 100 ms doubling to 5 s), LISTENs again and yields ``PostgresListenEvent/reconnected``:
    /// notifications sent while disconnected are lost, so re-check state then. Connecting
    /// happens in the background; use ``startListening(_:)`` to wait until LISTEN is active.
    public func listen(_ channels: [String]) -> PostgresNotificationStream {
        startListener(channels, ready: nil)
    }

    /// Like ``listen(_:)`` but returns only once LISTEN is active (so a `NOTIFY` sent after
    /// this returns is delivered); throws when the first connection attempt fails.
    public func startListening(_ channels: [String]) async throws(PostgresError) -> PostgresNotificationStream {
        let (readyStream, readyContinuation) = AsyncStream.makeStream(of: Result<Void, PostgresError>.self)
        let stream = startListener(channels, ready: readyContinuation)
        for await outcome in readyStream {
            try outcome.get()
            return stream
        }
        throw PostgresError(code: .cancelled, message: "the task was cancelled while starting to listen")
    }

    private func startListener(
        _ channels: [String], ready: AsyncStream<Result<Void, PostgresError>>.Continuation?
    ) -> PostgresNotificationStream {
        let (stream, continuation) = AsyncStream.makeStream(of: PostgresListenEvent.self, bufferingPolicy: .bufferingNewest(100_000))
        let wake = WakePipe()
        let stopped = Locked(false)
        let id = state.withLock { s -> Int? in
            if s.closed { return nil }
            s.nextID += 1
            return s.nextID
        }
        guard let id else {
            ready?.yield(.failure(PostgresError(code: .poolClosed, message: "the PostgreSQL pool was shut down")))
            continuation.finish()
            return PostgresNotificationStream(stream: stream)
        }
        let stop: @Sendable () -> Void = {
            stopped.withLock { $0 = true }
            wake.signal()
        }
        let task = Task {
            await self.listenLoop(channels, continuation: continuation, wake: wake, stopped: stopped, ready: ready)
            _ = self.state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        state.withLock {
            $0.listeners[id] = ListenerHandle(stop: {
                stop()
                task.cancel()
            })
        }
        continuation.onTermination = { _ in
            stop()
            task.cancel()
        }
        return PostgresNotificationStream(stream: stream)
    }

    private func listenLoop(
        _ channels: [String], continuation: AsyncStream<PostgresListenEvent>.Continuation, wake: WakePipe,
        stopped: Locked<Bool>, ready: AsyncStream<Result<Void, PostgresError>>.Continuation?
    ) async {
        var configuration = self.configuration
        for (key, value) in ["keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"]
        where configuration.options[key] == nil {
            configuration.options[key] = value
        }
        let listenSQL = channels.map { "LISTEN " + quoteIdentifier($0) }.joined(separator: "; ")
        var attempt = 0
        var hadConnection = false
        var ready = ready
        while !stopped.current && !Task.isCancelled {
            do throws(PostgresError) {
                let connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
                do throws(PostgresError) {
                    try await connection.execute(listenSQL)
                } catch {
                    await connection.close()
                    throw error
                }
                if hadConnection || attempt > 0 {
                    logger.info("postgres listener reconnected", metadata: ["pg.channels": "\(channels)"])
                    continuation.yield(.reconnected)
                }
                hadConnection = true
                attempt = 0
                ready?.yield(.success(()))
                ready?.finish()
                ready = nil
                do throws(PostgresError) {
                    while !stopped.current {
                        for notification in try await connection.waitForNotifications(wake: wake) {
                            continuation.yield(.notification(notification))
                        }
                    }
                    try? await connection.execute("UNLISTEN *")
                    await connection.close()
                } catch {
                    await connection.close()
                    throw error
                }
            } catch {
                if stopped.current { break }
                if let readyContinuation = ready {
                    readyContinuation.yield(.failure(error))
                    readyContinuation.finish()
                    break
                }
                attempt += 1
                let delay = Duration.milliseconds(min(5_000, 100 << min(attempt - 1, 6)))
                logger.warning(
                    "postgres listener lost its connection; reconnecting",
                    metadata: ["error": "\(error)", "pg.retry_in": "\(formatDuration(delay))"])
                try? await Task.sleep(for: delay)
            }
        }
        continuation.finish()
    }
}

/// `"name"` with embedded quotes doubled (channel names are identifiers).
func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
