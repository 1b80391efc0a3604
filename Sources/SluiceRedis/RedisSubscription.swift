/// What a subscription (``RedisClient/subscribe(to:configuration:)``) reports.
public enum RedisSubscriptionEvent: Sendable, Equatable {
    /// Subscribed (again, after a reconnect): messages published from now on arrive. Messages
    /// published while it was not subscribed are lost — whoever relies on them must treat
    /// what it learnt before as stale.
    case subscribed
    /// A message published on `channel`.
    case message(channel: String, payload: String)
    /// The connection failed or the server stopped answering pings; the subscription
    /// reconnects by itself after ``RedisSubscriptionSettings/retry``.
    case disconnected(String)
}

/// Settings of a subscription; each has a default.
public struct RedisSubscriptionSettings: Sendable, Hashable {
    /// Wait before connecting again after a failure. Default 0.5 s.
    public var retry: Duration = .milliseconds(500)
    /// A `PING` is sent this often; a subscription that sees no answer by the next one counts as
    /// disconnected (a dead server or network that never closes the socket). Default 2 s.
    public var pingInterval: Duration = .seconds(2)
    /// Longest wait on the socket, i.e. how soon a cancelled subscription ends. Default 200 ms.
    public var pollInterval: Duration = .milliseconds(200)

    public init() {}
}

extension RedisClient {
    /// Subscribes to `channels` on a connection of its own (outside the pool) and yields what
    /// arrives; reconnects by itself after a failure (``RedisSubscriptionEvent/disconnected(_:)``,
    /// then ``RedisSubscriptionEvent/subscribed`` again). The subscription ends when the
    /// consumer stops iterating or its task is cancelled.
    public func subscribe(to channels: [String], settings: RedisSubscriptionSettings = .init()) -> AsyncStream<RedisSubscriptionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisSubscriptionEvent.self, bufferingPolicy: .bufferingNewest(4096))
        let configuration = self.configuration
        let logger = self.logger
        let task = Task {
            while !Task.isCancelled {
                var connection: RedisConnection?
                do throws(RedisError) {
                    let subscribed = try await RedisConnection.connect(configuration: configuration, logger: logger)
                    connection = subscribed
                    try await subscribed.subscribe(channels)
                    continuation.yield(.subscribed)
                    var lastPing = ContinuousClock.now
                    var pongDue = false
                    while !Task.isCancelled {
                        if let reply = try await subscribed.receive(timeout: settings.pollInterval), let parts = reply.array {
                            switch parts.first?.string {
                            case "message" where parts.count == 3:
                                continuation.yield(.message(channel: parts[1].string ?? "", payload: parts[2].string ?? ""))
                            case "pong":
                                pongDue = false
                            default:
                                break
                            }
                        }
                        if ContinuousClock.now - lastPing >= settings.pingInterval {
                            if pongDue {
                                throw RedisError(code: .timeout, message: "no answer to PING within \(settings.pingInterval)", command: "PING",
                                                 server: configuration.serverLabel)
                            }
                            try await subscribed.pingSubscribed()
                            pongDue = true
                            lastPing = .now
                        }
                    }
                } catch {
                    if !Task.isCancelled {
                        continuation.yield(.disconnected("\(error)"))
                    }
                }
                await connection?.close()
                if !Task.isCancelled { try? await Task.sleep(for: settings.retry) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
