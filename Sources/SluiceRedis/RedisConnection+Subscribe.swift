#if canImport(Glibc)
import Glibc
#endif
import CHiredis

extension RedisConnection {
    /// Enters subscriber mode: `SUBSCRIBE channels…`, reading one confirmation per channel.
    /// Afterwards the connection only takes ``receive(timeout:)`` and ``pingSubscribed()``
    /// (Redis refuses other commands in this mode); close it to leave.
    public func subscribe(_ channels: [String]) throws(RedisError) {
        guard !channels.isEmpty else {
            var error = RedisError(code: .invalidCommand, message: "SUBSCRIBE needs at least one channel", server: configuration.serverLabel)
            error.notSent = true
            throw error
        }
        let replies = try pipelineSync([PackedCommand(["SUBSCRIBE"] + channels)])
        guard replies.first?.array?.first?.string == "subscribe" else {
            close()
            throw RedisError(code: .unexpectedReply, message: "SUBSCRIBE answered \(replies.first.map { "\($0)" } ?? "nothing")",
                             command: "SUBSCRIBE", server: configuration.serverLabel)
        }
        // One confirmation per channel; the first was read with the command.
        for _ in 1..<channels.count {
            guard let confirmation = try receive(timeout: configuration.commandTimeout), confirmation.array?.first?.string == "subscribe" else {
                close()
                throw RedisError(code: .unexpectedReply, message: "no SUBSCRIBE confirmation for every channel", command: "SUBSCRIBE",
                                 server: configuration.serverLabel)
            }
        }
    }

    /// The next reply pushed to a subscribed connection (`["message", channel, payload]`, or
    /// `["pong", ""]` after ``pingSubscribed()``), or nil when none arrived within `timeout`.
    /// Waits on the socket with `poll`, so a quiet channel never trips the command timeout;
    /// once bytes arrive the rest of the reply is read within it. An I/O error closes the
    /// connection and throws (the server went away: subscribe again on a new connection).
    public func receive(timeout: Duration) throws(RedisError) -> RedisValue? {
        guard let context else {
            var error = RedisError(code: .connectionClosed, message: "the connection is closed", server: configuration.serverLabel)
            error.notSent = true
            throw error
        }
        var raw: UnsafeMutableRawPointer?
        // A reply hiredis already read along with an earlier one.
        if redisGetReplyFromReader(context, &raw) != REDIS_OK {
            throw ioFailure(context, errnoValue: errno, command: "SUBSCRIBE")
        }
        if raw == nil {
            var pfd = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let (s, atto) = timeout.components
            let ready = poll(&pfd, 1, Int32(clamping: max(0, s * 1000 + atto / 1_000_000_000_000_000)))
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            errno = 0
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                throw ioFailure(context, errnoValue: errno, command: "SUBSCRIBE")
            }
        }
        defer { freeReplyObject(raw) }
        guard let value = Self.convert(UnsafePointer(raw!.assumingMemoryBound(to: redisReply.self))) else {
            close()
            throw RedisError(code: .protocolError, message: "hiredis returned an unknown reply type", command: "SUBSCRIBE",
                             server: configuration.serverLabel)
        }
        return value
    }

    /// Sends `PING` on a subscribed connection without waiting: its answer (`["pong", ""]`)
    /// arrives through ``receive(timeout:)``. A subscriber that sees no pong knows the server
    /// or the network is gone even when the socket stays quiet.
    public func pingSubscribed() throws(RedisError) {
        guard let context else {
            var error = RedisError(code: .connectionClosed, message: "the connection is closed", server: configuration.serverLabel)
            error.notSent = true
            throw error
        }
        let rc = PackedCommand(["PING"]).withArgv { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
        if rc != REDIS_OK { throw ioFailure(context, errnoValue: errno, command: "PING") }
        var done: Int32 = 0
        repeat {
            if redisBufferWrite(context, &done) != REDIS_OK { throw ioFailure(context, errnoValue: errno, command: "PING") }
        } while done == 0
    }
}
