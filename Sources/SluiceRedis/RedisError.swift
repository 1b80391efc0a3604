import SluiceSupport

/// An error from the Redis wrapper: a machine-readable ``Code``, a human ``message`` and the
/// context that helps an operator (server address, command name, server error prefix). The
/// fields are read-only outside this module.
///
/// Neither ``message``, ``description`` nor ``debugDescription`` ever contains a password:
/// configuration parsing and `AUTH` failures are reported without echoing the secret, and the
/// command context is only the command *name* (never its arguments, which may be secrets or
/// user data).
public struct RedisError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// An extensible error code (compare with `==`, switch over the static members).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }

        /// The `redis://` URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// The TCP connection could not be established (refused, unreachable, connect timeout).
        public static let connectionFailed = Code("connectionFailed")
        /// `AUTH` was rejected by the server.
        public static let authenticationFailed = Code("authenticationFailed")
        /// The connection was closed (by the server, by ``RedisConnection/close()``, by a
        /// client shutdown, or because an earlier I/O error made it unusable).
        public static let connectionClosed = Code("connectionClosed")
        /// A command did not complete within ``RedisConfiguration/commandTimeout``; the
        /// connection has been discarded.
        public static let timeout = Code("timeout")
        /// The server answered with an error reply (`-ERR …`, `-WRONGTYPE …`, a script error).
        public static let server = Code("server")
        /// hiredis could not parse the server's reply; the connection has been discarded.
        public static let protocolError = Code("protocolError")
        /// The calling task was cancelled before the command was sent.
        public static let cancelled = Code("cancelled")
        /// No pooled connection became available within the pool's `acquireTimeout`.
        public static let poolTimeout = Code("poolTimeout")
        /// The command was rejected before sending (e.g. an empty argument list, which Redis
        /// would silently ignore, leaving the caller waiting for a reply that never comes).
        public static let invalidCommand = Code("invalidCommand")
        /// The reply had a shape the caller did not expect (e.g. `SCRIPT LOAD` not returning a SHA).
        public static let unexpectedReply = Code("unexpectedReply")

        /// The code's name, e.g. `timeout`.
        public var description: String { raw }
    }

    /// What went wrong, as a machine-readable code.
    public internal(set) var code: Code
    /// A human-readable explanation. Never contains a password.
    public internal(set) var message: String
    /// The command name (first argument, upper-cased) when the error concerns a command.
    public internal(set) var command: String?
    /// `host:port` of the server, when known.
    public internal(set) var server: String?
    /// For ``Code/server`` errors: the first word of the error reply (`ERR`, `WRONGTYPE`,
    /// `NOSCRIPT`, `NOAUTH`, …), which is the stable part to branch on.
    public internal(set) var serverErrorPrefix: String?

    /// True when the failure is known to have happened *before* any byte of the command was
    /// written (a stale pooled connection, cancellation), so retrying cannot double-apply it.
    var notSent: Bool = false

    init(
        code: Code, message: String, command: String? = nil, server: String? = nil,
        serverErrorPrefix: String? = nil
    ) {
        self.code = code
        self.message = message
        self.command = command
        self.server = server
        self.serverErrorPrefix = serverErrorPrefix
    }

    /// `RedisError.<code>: <message> command=… server=…` — safe to log (no secrets).
    public var description: String {
        var parts = [ErrorFormat.summary("RedisError", code: code, message)]
        if let command { parts.append("command=\(command)") }
        if let server { parts.append("server=\(server)") }
        return parts.joined(separator: " ")
    }

    /// Every field, including the server's error prefix and whether the command was sent.
    public var debugDescription: String {
        ErrorFormat.debug("RedisError", code: code, [
            ("message", message), ("command", command), ("server", server),
            ("serverErrorPrefix", serverErrorPrefix), ("notSent", notSent),
        ])
    }
}
