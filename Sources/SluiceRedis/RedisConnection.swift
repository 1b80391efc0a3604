#if canImport(Glibc)
import Glibc
#endif
import CHiredis
public import Logging
import SluiceSupport

/// One Redis connection: a blocking hiredis context confined to its own OS thread.
///
/// The actor's `unownedExecutor` is a ``ThreadExecutor``, so every isolated method — and thus
/// every blocking hiredis call (`redisConnectWithTimeout`, `redisGetReply`) — runs on the
/// connection's dedicated thread, never on one of Swift's cooperative threads. Callers just
/// `await` the methods. Socket waits are bounded by ``RedisConfiguration/commandTimeout``.
///
/// ## Failure model
/// Any I/O error, timeout or protocol error leaves the wire in an unknown state, so the
/// connection is closed at once and every later call throws ``RedisError/Code/connectionClosed``
/// (``isOpen`` turns false). ``RedisClient`` drops such connections and opens fresh ones.
///
/// ## Cancellation
/// A hiredis read cannot be interrupted safely half-way through a reply. Cancellation is
/// therefore checked *before* a command is written: a task cancelled by then gets
/// ``RedisError/Code/cancelled`` and nothing is sent. Once written, the command runs to
/// completion (bounded by `commandTimeout`), its whole reply is read, and the reply is
/// returned — the caller learns what the server actually did (a script that consumed tokens
/// did consume them). A connection is therefore never left with a half-read reply.
///
/// Publish/subscribe: a connection put in subscriber mode with ``subscribe(_:)`` only takes
/// ``receive(timeout:)`` and ``pingSubscribed()`` afterwards (``RedisClient/subscribe(to:)``
/// runs such a connection of its own). Not supported: `MONITOR`, and `MULTI` left open across
/// a return to the pool.
public actor RedisConnection {
    private let executor: ThreadExecutor
    /// The dedicated thread all isolated code (and hiredis) runs on.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The configuration this connection was opened with.
    public nonisolated let configuration: RedisConfiguration
    private let logger: Logger
    var context: UnsafeMutablePointer<redisContext>?

    /// False once the connection has been closed, explicitly or because of an I/O error.
    public var isOpen: Bool { context != nil }

    private init(configuration: RedisConfiguration, logger: Logger, executor: ThreadExecutor) {
        self.configuration = configuration
        self.executor = executor
        var logger = logger
        logger[metadataKey: "redis.server"] = "\(configuration.serverLabel)"
        self.logger = logger
    }

    isolated deinit {
        if let context { redisFree(context) }
        executor.shutdown()
    }

    /// Connects (bounded by `connectTimeout`), sets the command timeout, then sends `AUTH`
    /// (password, or username + password for Redis 6 ACLs) and `SELECT` as configured.
    /// - Throws: ``RedisError/Code/connectionFailed``, ``RedisError/Code/authenticationFailed``,
    ///   ``RedisError/Code/server`` (e.g. `SELECT` of a database that does not exist).
    public static func connect(configuration: RedisConfiguration, logger: Logger) async throws(RedisError) -> RedisConnection {
        let executor = ThreadExecutor(name: "redis-\(configuration.port)")
        let connection = RedisConnection(configuration: configuration, logger: logger, executor: executor)
        try await connection.open()
        return connection
    }

    /// Closes the connection. Later calls throw ``RedisError/Code/connectionClosed``. Idempotent.
    public func close() {
        guard let context else { return }
        redisFree(context)
        self.context = nil
        logger.debug("redis connection closed")
    }

    // MARK: Commands

    /// Sends one command and returns its reply; an error reply is returned as ``RedisValue/error(_:)``.
    /// Arguments are binary safe (sent with `redisAppendCommandArgv`, never a format string).
    public func send(_ args: [String]) async throws(RedisError) -> RedisValue {
        try sendSync(PackedCommand(args))
    }

    /// Sends one command given as raw byte strings; an error reply is returned as ``RedisValue/error(_:)``.
    public func send(bytes args: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try sendSync(PackedCommand(bytes: args))
    }

    /// Sends one command and returns its reply; an error reply is thrown as ``RedisError/Code/server``.
    public func command(_ args: [String]) async throws(RedisError) -> RedisValue {
        try checked(sendSync(PackedCommand(args)), command: args.first)
    }

    /// Sends one command given as raw byte strings (values containing `\0`, `\r\n`, anything);
    /// an error reply is thrown as ``RedisError/Code/server``.
    public func command(bytes args: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try checked(sendSync(PackedCommand(bytes: args)), command: args.first.map { String(decoding: $0, as: UTF8.self) })
    }

    /// Pipelining: appends every command to the output buffer, writes them in one go and then
    /// reads all replies, in order (one round trip). Error replies stay in place as
    /// ``RedisValue/error(_:)`` so one failing command does not hide the others' results.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try pipelineSync(commands.map(PackedCommand.init))
    }

    /// Pipelining with raw byte-string arguments; see ``pipeline(_:)``.
    public func pipeline(bytes commands: [[[UInt8]]]) async throws(RedisError) -> [RedisValue] {
        try pipelineSync(commands.map { PackedCommand(bytes: $0) })
    }

    // MARK: Internals (all run on the connection's thread)

    /// Turns an error reply into a thrown ``RedisError/Code/server``.
    func checked(_ value: RedisValue, command: String?) throws(RedisError) -> RedisValue {
        if case .error(let message) = value {
            throw serverError(message, command: command)
        }
        return value
    }

    func serverError(_ message: String, command: String?) -> RedisError {
        let prefix = message.split(separator: " ", maxSplits: 1).first.map(String.init)
        return RedisError(
            code: .server, message: message, command: command.map(Self.commandLabel),
            server: configuration.serverLabel, serverErrorPrefix: prefix
        )
    }

    func sendSync(_ command: PackedCommand) throws(RedisError) -> RedisValue {
        try pipelineSync([command])[0]
    }

    func pipelineSync(_ commands: [PackedCommand]) throws(RedisError) -> [RedisValue] {
        let name = commands.first?.name
        guard let context else {
            var error = RedisError(
                code: .connectionClosed, message: "the connection is closed", command: name.map(Self.commandLabel),
                server: configuration.serverLabel
            )
            error.notSent = true
            throw error
        }
        if Task.isCancelled {
            var error = RedisError(
                code: .cancelled, message: "the task was cancelled before the command was sent",
                command: name.map(Self.commandLabel), server: configuration.serverLabel
            )
            error.notSent = true
            throw error
        }
        if commands.isEmpty { return [] }
        if commands.contains(where: \.isEmpty) {
            var error = RedisError(
                code: .invalidCommand, message: "a command needs at least one argument (its name)", server: configuration.serverLabel
            )
            error.notSent = true
            throw error
        }
        // In request/response mode an idle socket never has anything to read. If it has, the
        // server closed it (CLIENT KILL, restart, idle timeout): fail before writing anything,
        // so the caller (RedisClient) can retry on a fresh connection without double-applying.
        if Self.peerHasClosed(fd: context.pointee.fd) {
            closeBroken(reason: "server closed the idle connection")
            var error = RedisError(
                code: .connectionClosed, message: "the server closed the connection while it was idle",
                command: name.map(Self.commandLabel), server: configuration.serverLabel
            )
            error.notSent = true
            throw error
        }
        for command in commands {
            let rc = command.withArgv { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            if rc != REDIS_OK {
                // Only fails on out-of-memory; part of the pipeline may be buffered, so drop the connection.
                throw ioFailure(context, errnoValue: errno, command: name)
            }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            errno = 0
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                throw ioFailure(context, errnoValue: errno, command: name)
            }
            let reply = UnsafePointer(raw!.assumingMemoryBound(to: redisReply.self))
            defer { freeReplyObject(raw) }
            guard let value = Self.convert(reply) else {
                closeBroken(reason: "unknown reply type")
                throw RedisError(
                    code: .protocolError, message: "hiredis returned an unknown reply type",
                    command: name.map(Self.commandLabel), server: configuration.serverLabel
                )
            }
            replies.append(value)
        }
        return replies
    }

    /// Classifies a hiredis failure, closes the (now unusable) context and returns the error.
    func ioFailure(_ context: UnsafeMutablePointer<redisContext>, errnoValue: Int32, command: String?) -> RedisError {
        let kind = context.pointee.err
        let text = Self.errorString(context)
        let code: RedisError.Code
        let message: String
        if kind == REDIS_ERR_IO && (errnoValue == EAGAIN || errnoValue == EWOULDBLOCK) {
            code = .timeout
            message = "no reply within the command timeout (\(configuration.commandTimeout)); connection discarded"
        } else if kind == REDIS_ERR_PROTOCOL {
            code = .protocolError
            message = "protocol error: \(text); connection discarded"
        } else {
            code = .connectionClosed
            message = kind == REDIS_ERR_EOF ? "the server closed the connection" : "I/O error: \(text); connection discarded"
        }
        if errnoValue == EPIPE { Self.consumePendingSIGPIPE() }
        closeBroken(reason: message)
        return RedisError(code: code, message: message, command: command.map(Self.commandLabel), server: configuration.serverLabel)
    }

    private func closeBroken(reason: String) {
        guard let context else { return }
        logger.warning("redis connection discarded", metadata: ["reason": "\(reason)"])
        redisFree(context)
        self.context = nil
    }

    // MARK: Connect

    private func open() throws(RedisError) {
        Self.blockSIGPIPEOnThisThread()
        let server = configuration.serverLabel
        guard let ctx = redisConnectWithTimeout(configuration.host, Int32(clamping: configuration.port), configuration.connectTimeout.timeval) else {
            throw RedisError(code: .connectionFailed, message: "hiredis could not allocate a context", server: server)
        }
        if ctx.pointee.err != 0 {
            let text = Self.errorString(ctx)
            redisFree(ctx)
            throw RedisError(code: .connectionFailed, message: "cannot connect: \(text)", server: server)
        }
        if configuration.commandTimeout > .zero, redisSetTimeout(ctx, configuration.commandTimeout.timeval) != REDIS_OK {
            let text = Self.errorString(ctx)
            redisFree(ctx)
            throw RedisError(code: .connectionFailed, message: "cannot set the command timeout: \(text)", server: server)
        }
        _ = redisEnableKeepAlive(ctx)
        context = ctx

        do throws(RedisError) {
            if let password = configuration.password {
                var auth = ["AUTH"]
                if let username = configuration.username { auth.append(username) }
                auth.append(password.revealed)
                let reply = try sendSync(PackedCommand(auth))
                if case .error(let message) = reply {
                    // The server's message (e.g. WRONGPASS …) never echoes the password.
                    var error = serverError(message, command: "AUTH")
                    error.code = .authenticationFailed
                    error.message = "authentication failed: \(message)"
                    throw error
                }
            }
            if configuration.database != 0 {
                _ = try checked(sendSync(PackedCommand(["SELECT", String(configuration.database)])), command: "SELECT")
            }
        } catch {
            close()
            throw error
        }
        logger.debug("redis connection open", metadata: ["redis.db": "\(configuration.database)"])
    }

    // MARK: Helpers

    static func commandLabel(_ name: String) -> String { String(name.prefix(32)).uppercased() }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafePointer(to: &context.pointee.errstr) { tuple in
            tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                String(cString: $0)
            }
        }
    }

    /// Converts a hiredis reply tree (nested arrays included); nil for an unknown type.
    static func convert(_ reply: UnsafePointer<redisReply>) -> RedisValue? {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                guard let child = r.element[i], let value = convert(child) else { return nil }
                elements.append(value)
            }
            return .array(elements)
        default:
            return nil
        }
    }

    /// True if the peer has closed the socket (or sent unsolicited data) — checked with a
    /// zero-timeout `poll`, one cheap syscall.
    private static func peerHasClosed(fd: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = poll(&pfd, 1, 0)
        return n > 0 && pfd.revents != 0
    }

    /// hiredis 0.14 writes with `write(2)`, which raises SIGPIPE on a socket the server has
    /// closed — by default that kills the process. Instead of changing the process-wide
    /// disposition, block SIGPIPE on this connection's own thread (the only thread that
    /// touches the socket): the write then fails with EPIPE, which we handle as a closed
    /// connection (the same technique libpq uses).
    private static func blockSIGPIPEOnThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Discards a SIGPIPE left pending on this thread by a failed write.
    private static func consumePendingSIGPIPE() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        while sigtimedwait(&set, nil, &zero) == SIGPIPE {}
    }
}

/// A command's arguments packed into one contiguous buffer, ready for `redisAppendCommandArgv`.
struct PackedCommand: Sendable {
    private var storage: [UInt8] = []
    private var lengths: [Int] = []

    init(_ args: [String]) {
        lengths.reserveCapacity(args.count)
        for arg in args {
            let utf8 = arg.utf8
            storage.append(contentsOf: utf8)
            lengths.append(utf8.count)
        }
    }

    init(bytes args: [[UInt8]]) {
        lengths.reserveCapacity(args.count)
        for arg in args {
            storage.append(contentsOf: arg)
            lengths.append(arg.count)
        }
    }

    /// True when there are no arguments at all.
    var isEmpty: Bool { lengths.isEmpty }

    /// The first argument (the command name), for error context.
    var name: String? {
        guard let first = lengths.first else { return nil }
        return String(decoding: storage.prefix(min(first, 32)), as: UTF8.self)
    }

    /// Calls `body` with `argc`, `argv` and `argvlen` valid for the duration of the call.
    func withArgv<R>(_ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        var storage = self.storage
        storage.append(0)  // never empty, so baseAddress is non-nil even when every argument is empty
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = []
            argv.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                argv.append(base + offset)
                offset += length
            }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(lengths.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}

extension Duration {
    /// The duration as a `struct timeval` (microsecond precision), for hiredis.
    var timeval: timeval {
        let (seconds, attoseconds) = components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
