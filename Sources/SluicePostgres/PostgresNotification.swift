/// A `NOTIFY` received on a listened channel.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel name.
    public var channel: String
    /// The payload (empty when none was given).
    public var payload: String
    /// The server process ID of the notifying session.
    public var pid: Int32

    /// Creates a notification.
    public init(channel: String, payload: String, pid: Int32) {
        self.channel = channel
        self.payload = payload
        self.pid = pid
    }
}

/// What a LISTEN stream yields.
public enum PostgresListenEvent: Sendable, Hashable {
    /// A notification.
    case notification(PostgresNotification)
    /// The listener lost its connection and is listening again on a new one. Notifications
    /// sent while it was disconnected are lost: re-check whatever state they signal.
    case reconnected
}

/// The notifications of ``PostgresClient/listen(_:)``; iterate with `for await`. Stopping the
/// iteration (or dropping the stream) stops listening and closes the dedicated connection.
public struct PostgresNotificationStream: AsyncSequence, Sendable {
    public typealias Element = PostgresListenEvent
    let stream: AsyncStream<PostgresListenEvent>

    public func makeAsyncIterator() -> AsyncStream<PostgresListenEvent>.Iterator {
        stream.makeAsyncIterator()
    }
}
