extension RedisConnection {
    /// Runs a Lua script by SHA (`EVALSHA`). If the server does not know the script
    /// (`NOSCRIPT`: first use, after `SCRIPT FLUSH` or a restart), it sends `SCRIPT LOAD` and
    /// `EVALSHA` again as one pipelined round trip — transparently for the caller.
    ///
    /// An error reply (a Lua error, `redis.error_reply`) is thrown as ``RedisError/Code/server``.
    public func eval(_ script: RedisScript, keys: [String], args: [String]) async throws(RedisError) -> RedisValue {
        let evalsha = PackedCommand(["EVALSHA", script.sha1, String(keys.count)] + keys + args)
        var reply = try sendSync(evalsha)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            let replies = try pipelineSync([PackedCommand(["SCRIPT", "LOAD", script.source]), evalsha])
            guard replies[0].string == script.sha1 else {
                if case .error(let loadError) = replies[0] { throw serverError(loadError, command: "SCRIPT") }
                throw RedisError(
                    code: .unexpectedReply,
                    message: "SCRIPT LOAD returned \(replies[0]) instead of the SHA-1 \(script.sha1)",
                    command: "SCRIPT", server: configuration.serverLabel
                )
            }
            reply = replies[1]
        }
        return try checked(reply, command: "EVALSHA")
    }
}
