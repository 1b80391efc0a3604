import CLibPQ
import Foundation
public import Logging
import SluiceSupport

#if canImport(Glibc)
import Glibc
#endif

/// State other threads may read or change: the `PGcancel` handle and a few status bits the
/// pool reads without hopping onto the connection's thread.
struct ConnectionShared {
    var cancel: OpaquePointer?
    var inFlight = false
    /// Counts round trips; a cancel sent again (``cancelUntilDone(_:round:)``) only while the
    /// round it was meant for is still in flight.
    var round: UInt64 = 0
    var cancelRequested = false
    var closed = true
    var socket: Int32 = -1
    var pid: Int32 = 0
    var idle = true  // PQTRANS_IDLE: not inside a transaction
}

/// Receives libpq notices (`NOTICE: relation … already exists, skipping`) and logs them at
/// debug level instead of letting libpq print to stderr.
final class NoticeSink: Sendable {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

/// One PostgreSQL connection.
///
/// An actor whose `unownedExecutor` is a `ThreadExecutor`: every isolated method, including
/// the blocking libpq calls, runs on the connection's own OS thread, so Swift's cooperative
/// threads never block on the network. Callers just `await`.
///
/// Cancellation: `query`, `execute`, `copyFrom` and `pipeline` install a task-cancellation
/// handler that sends `PQcancel` (from the cancelling thread; the `PGcancel` handle is
/// guarded by a lock). The statement then fails on the server with SQLSTATE 57014 and the
/// call throws `.cancelled`; the connection stays usable. PostgreSQL ignores a cancel that
/// arrives while the backend is still reading the command, so the cancel is sent again every
/// 250 ms while the same round trip is in flight (``cancelUntilDone(_:round:)``).
///
/// The actor is reentrant like every actor: while a `withTransaction` body awaits, another
/// task holding the same connection could interleave statements. Pooled connections are
/// handed to one task at a time, which is the intended use.
public actor PostgresConnection {
    nonisolated let executor: ThreadExecutor
    /// The connection's dedicated thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    nonisolated let configuration: PostgresConfiguration
    nonisolated let logger: Logger
    nonisolated let shared = Locked(ConnectionShared())
    nonisolated let noticeSink: NoticeSink

    /// The `PGconn*`; nil once closed. Only touched on the connection's thread.
    var pg: OpaquePointer?
    /// Prepared statements: (parameter types + SQL) → statement name.
    var statements: [String: String] = [:]
    var transactionDepth = 0
    /// The executor's thread, recorded at connect; debug builds assert libpq runs only there.
    var ownThread: pthread_t?

    init(configuration: PostgresConfiguration, logger: Logger) {
        self.executor = ThreadExecutor(name: "sluice-pg")
        self.configuration = configuration
        self.logger = logger
        self.noticeSink = NoticeSink(logger: logger)
    }

    isolated deinit {
        if let pg { PQfinish(pg) }
        shared.withLock { s in
            if let c = s.cancel { PQfreeCancel(c) }
            s.cancel = nil
        }
        executor.shutdown()
    }

    /// Opens a connection (blocking `PQconnectdbParams` on the new connection's own thread,
    /// bounded by `configuration.connectTimeout`). The session runs with `DateStyle=ISO`,
    /// `TimeZone=UTC`, `IntervalStyle=postgres`, `client_encoding=UTF8`.
    public static func connect(configuration: PostgresConfiguration, logger: Logger) async throws(PostgresError) -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration, logger: logger)
        try await connection.open()
        return connection
    }

    /// The server process ID of this session (0 when not connected), e.g. for `pg_terminate_backend`.
    public nonisolated var backendPID: Int32 { shared.withLock { $0.pid } }

    /// Whether the connection is closed (by ``close()`` or because it broke).
    public var isClosed: Bool { pg == nil || shared.withLock { $0.closed } }

    /// Closes the connection (`PQfinish`). Later calls throw `.connectionClosed`.
    public func close() {
        if let pg {
            PQfinish(pg)
            self.pg = nil
        }
        statements.removeAll()
        shared.withLock { s in
            if let c = s.cancel { PQfreeCancel(c) }
            s.cancel = nil
            s.closed = true
            s.socket = -1
        }
    }

    private func open() throws(PostgresError) {
        let params = configuration.connectionParameters()
        let conn = withCStrings(params.map(\.0)) { keywords in
            withCStrings(params.map(\.1)) { values in PQconnectdbParams(keywords, values, 0) }
        }
        guard let conn else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = scrub(String(cString: PQerrorMessage(conn)))
            PQfinish(conn)
            throw PostgresError(
                code: .connectionFailed,
                message: "could not connect to \(configuration.host):\(configuration.port) as \(configuration.user): \(message)")
        }
        pg = conn
        ownThread = pthread_self()
        PQsetNoticeProcessor(conn, noticeProcessor, Unmanaged.passUnretained(noticeSink).toOpaque())
        let cancel = PQgetCancel(conn)
        let socket = PQsocket(conn)
        let pid = PQbackendPID(conn)
        shared.withLock { s in
            s.cancel = cancel
            s.closed = false
            s.socket = socket
            s.pid = pid
            s.idle = true
        }
        logger.debug("postgres connected", metadata: ["pg.pid": "\(pid)", "pg.host": "\(configuration.host)"])
    }

    /// Removes the password from a libpq message (libpq does not echo it, but be certain).
    nonisolated func scrub(_ message: String) -> String {
        var text = message.trimmingSpaces
        if let password = configuration.password?.revealed, !password.isEmpty {
            text = text.replacingOccurrences(of: password, with: "<redacted>")
        }
        return text
    }

    // MARK: Statements

    /// Runs one parameterised statement and returns its rows.
    ///
    /// With `prepared: true` the statement is prepared once per connection (keyed by SQL text
    /// and parameter types) and executed by name afterwards; a fresh connection (after a
    /// reconnect) starts with an empty cache, and a statement the server no longer knows is
    /// re-prepared transparently.
    public func query(
        _ sql: String, _ binds: [(any PostgresEncodable)?], prepared: Bool = false
    ) async throws(PostgresError) -> PostgresResult {
        let parameters = try EncodedParameters(binds)
        return try await cancellable(sql: sql) { () throws(PostgresError) -> PostgresResult in
            if prepared {
                return try self.runPrepared(sql, parameters, retry: true)
            }
            return try self.run(cancellable: true) { pg in
                parameters.withPointers { types, values in
                    PQsendQueryParams(pg, sql, Int32(parameters.count), types, values, nil, nil, 0)
                }
            }
        }
    }

    /// Runs one or more `;`-separated statements with the simple-query protocol (no
    /// parameters): DDL, migrations. Stops at the first error.
    public func execute(_ sql: String) async throws(PostgresError) {
        _ = try await cancellable(sql: sql) { () throws(PostgresError) -> PostgresResult in
            try self.run(cancellable: true) { pg in PQsendQuery(pg, sql) }
        }
    }

    /// Runs `body` inside `BEGIN … COMMIT`.
    ///
    /// ROLLBACK happens when `body` throws, when the task is cancelled (checked after `body`
    /// returns, and any statement running at that moment is cancelled), or when a statement
    /// inside failed and the error was swallowed (then this throws). Nested calls use
    /// `SAVEPOINT`s: an inner failure rolls back only the inner part.
    public func withTransaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let depth = transactionDepth
        let savepoint = depth > 0 ? "sluice_savepoint_\(depth)" : nil
        try control(savepoint.map { "SAVEPOINT \($0)" } ?? "BEGIN")
        transactionDepth = depth + 1
        do {
            let value = try await body(self)
            if Task.isCancelled {
                throw PostgresError(code: .cancelled, message: "the task was cancelled; the transaction was rolled back")
            }
            if let pg, PQtransactionStatus(pg) == PQTRANS_INERROR {
                throw PostgresError(
                    code: .server,
                    message: "a statement inside the transaction failed; the transaction was rolled back")
            }
            transactionDepth = depth
            try control(savepoint.map { "RELEASE SAVEPOINT \($0)" } ?? "COMMIT")
            return value
        } catch {
            transactionDepth = depth
            if pg != nil, !shared.withLock({ $0.closed }) {
                do {
                    try control(savepoint.map { "ROLLBACK TO SAVEPOINT \($0)" } ?? "ROLLBACK")
                } catch {
                    logger.warning("postgres rollback failed", metadata: ["error": "\(error)"])
                }
            }
            throw error
        }
    }

    /// A transaction-control statement: not cancellable (ROLLBACK must run in a cancelled task).
    func control(_ sql: String) throws(PostgresError) {
        _ = try run(cancellable: false) { pg in PQsendQuery(pg, sql) }
    }

    private func runPrepared(_ sql: String, _ parameters: EncodedParameters, retry: Bool) throws(PostgresError) -> PostgresResult {
        let key = parameters.typeKey + sql
        let name: String
        if let existing = statements[key] {
            name = existing
        } else {
            name = "sluice_stmt_\(statements.count + 1)"
            _ = try run(cancellable: true) { pg in
                parameters.withPointers { types, _ in
                    PQsendPrepare(pg, name, sql, Int32(parameters.count), types)
                }
            }
            statements[key] = name
        }
        do {
            return try run(cancellable: true) { pg in
                parameters.withPointers { _, values in
                    PQsendQueryPrepared(pg, name, Int32(parameters.count), values, nil, nil, 0)
                }
            }
        } catch {
            // 26000 invalid_sql_statement_name: e.g. after DISCARD ALL. Re-prepare once when
            // not inside a transaction (inside one, the transaction is already aborted).
            if error.sqlState == "26000", retry, let pg, PQtransactionStatus(pg) == PQTRANS_IDLE {
                statements[key] = nil
                return try runPrepared(sql, parameters, retry: false)
            }
            throw error
        }
    }

    // MARK: Execution core

    /// Runs `operation` with a cancellation handler that sends `PQcancel`. An error thrown
    /// while running `sql` carries it as its ``PostgresError/query``.
    func cancellable<T>(sql: String? = nil, _ operation: () throws(PostgresError) -> T) async throws(PostgresError) -> T {
        if Task.isCancelled {
            throw PostgresError(code: .cancelled, message: "the task was cancelled before the statement was sent")
        }
        let shared = self.shared
        shared.withLock { $0.cancelRequested = false }
        // The operation closure must capture `self` (the isolated parameter): a closure that
        // does not is inferred nonisolated and would run on the cooperative pool, blocking it.
        let result: Result<T, PostgresError> = await withTaskCancellationHandler {
            self.perform(operation)
        } onCancel: {
            let round = shared.withLock { s -> UInt64? in
                s.cancelRequested = true
                guard s.inFlight, let cancel = s.cancel else { return nil }
                sendCancel(cancel)
                return s.round
            }
            if let round { cancelUntilDone(shared, round: round) }
        }
        if case .failure(let error) = result, let sql {
            throw error.attaching(query: sql, scrubbing: configuration.password)
        }
        return try result.get()
    }

    private func perform<T>(_ operation: () throws(PostgresError) -> T) -> Result<T, PostgresError> {
        do throws(PostgresError) {
            return .success(try operation())
        } catch {
            return .failure(error)
        }
    }

    /// Debug builds: libpq must only ever be called on the connection's own thread.
    func assertOnOwnThread() {
        #if DEBUG
        if let ownThread { assert(pthread_equal(ownThread, pthread_self()) != 0, "libpq called off the connection's thread") }
        #endif
    }

    /// The live `PGconn*` or `.connectionClosed`.
    func live() throws(PostgresError) -> OpaquePointer {
        assertOnOwnThread()
        guard let pg, PQstatus(pg) == CONNECTION_OK else {
            if pg != nil { markBroken() }
            throw PostgresError(code: .connectionClosed, message: "the connection is closed")
        }
        return pg
    }

    /// Marks the start of a round trip; throws `.cancelled` if a cancel already arrived.
    func beginInFlight(cancellable: Bool) throws(PostgresError) {
        let cancelled = shared.withLock { s -> Bool in
            if cancellable && s.cancelRequested { return true }
            s.inFlight = true
            s.round &+= 1
            if !cancellable { s.cancelRequested = false }
            return false
        }
        if cancelled {
            throw PostgresError(code: .cancelled, message: "the task was cancelled before the statement was sent")
        }
    }

    /// Called right after the request was written: a cancel that arrived while sending is sent now.
    func afterSend() {
        let round = shared.withLock { s -> UInt64? in
            guard s.cancelRequested, let cancel = s.cancel else { return nil }
            sendCancel(cancel)
            return s.round
        }
        if let round { cancelUntilDone(shared, round: round) }
    }

    func endInFlight() {
        let idle = pg.map { PQtransactionStatus($0) == PQTRANS_IDLE } ?? true
        shared.withLock { s in
            s.inFlight = false
            s.idle = idle
        }
    }

    /// Sends one request with `send` and collects its results (the last result set wins; the
    /// first error is thrown after the connection is drained).
    func run(cancellable: Bool, _ send: (OpaquePointer) -> Int32) throws(PostgresError) -> PostgresResult {
        let pg = try live()
        try beginInFlight(cancellable: cancellable)
        defer { endInFlight() }
        guard send(pg) == 1 else { throw connectionError(pg, doing: "sending the statement") }
        afterSend()
        return try collect(pg)
    }

    /// Reads results until `PQgetResult` returns NULL.
    func collect(_ pg: OpaquePointer) throws(PostgresError) -> PostgresResult {
        var result: PostgresResult?
        var firstError: PostgresError?
        while let res = PQgetResult(pg) {
            defer { PQclear(res) }
            switch PQresultStatus(res) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if firstError == nil { result = makeResult(res) }
            case PGRES_COPY_IN:
                _ = PQputCopyEnd(pg, "COPY FROM STDIN is only supported through copyFrom(_:chunks:)")
            case PGRES_COPY_OUT:
                var buffer: UnsafeMutablePointer<CChar>?
                while PQgetCopyData(pg, &buffer, 0) > 0 { PQfreemem(buffer) }
                if firstError == nil {
                    firstError = PostgresError(code: .protocolViolation, message: "COPY TO STDOUT is not supported; the data was discarded")
                }
            default:
                if firstError == nil { firstError = serverError(res) }
            }
            if PQstatus(pg) == CONNECTION_BAD { break }
        }
        if PQstatus(pg) == CONNECTION_BAD {
            throw closedError(pg, cause: firstError)
        }
        if var error = firstError {
            if error.sqlState == "57014", shared.withLock({ $0.cancelRequested }) {
                error.code = .cancelled
                error.message = "the statement was cancelled because the task was cancelled (\(error.message))"
            }
            throw error
        }
        return result ?? PostgresResult()
    }

    func markBroken() {
        statements.removeAll()
        shared.withLock { $0.closed = true }
    }

    /// The error for a failed `PQsend…`/`PQputCopy…` call.
    func connectionError(_ pg: OpaquePointer, doing what: String) -> PostgresError {
        if PQstatus(pg) == CONNECTION_BAD { return closedError(pg, cause: nil) }
        return PostgresError(code: .protocolViolation, message: "\(what) failed: \(scrub(String(cString: PQerrorMessage(pg))))")
    }

    func closedError(_ pg: OpaquePointer, cause: PostgresError?) -> PostgresError {
        markBroken()
        var error = cause ?? PostgresError(code: .connectionClosed, message: "")
        let libpqMessage = scrub(String(cString: PQerrorMessage(pg)))
        error.code = .connectionClosed
        error.message = "the connection was lost: " + (cause?.message ?? libpqMessage)
        return error
    }

    func serverError(_ res: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let p = PQresultErrorField(res, Int32(code.asciiValue!)) else { return nil }
            return String(cString: p)
        }
        let message = field("M") ?? scrub(String(cString: PQresultErrorMessage(res)))
        return PostgresError(
            code: .server, message: message, sqlState: field("C"), detail: field("D"), hint: field("H"),
            schema: field("s"), table: field("t"), column: field("c"), constraint: field("n"))
    }

    /// Copies a `PGresult` into Swift memory.
    func makeResult(_ res: OpaquePointer) -> PostgresResult {
        let rows = Int(PQntuples(res))
        let columns = Int(PQnfields(res))
        let affected = Int(String(cString: PQcmdTuples(res))) ?? 0
        guard columns > 0 else { return PostgresResult(storage: .empty, affectedRows: affected) }
        var names: [String] = []
        var types: [PostgresDataType] = []
        for c in 0..<columns {
            names.append(String(cString: PQfname(res, Int32(c))))
            types.append(PostgresDataType(oid: PQftype(res, Int32(c))))
        }
        var total = 0
        for r in 0..<rows {
            for c in 0..<columns { total += Int(PQgetlength(res, Int32(r), Int32(c))) }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        var starts: [Int] = []
        var ends: [Int] = []
        starts.reserveCapacity(rows * columns)
        ends.reserveCapacity(rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                if PQgetisnull(res, Int32(r), Int32(c)) == 1 {
                    starts.append(-1)
                    ends.append(-1)
                    continue
                }
                let length = Int(PQgetlength(res, Int32(r), Int32(c)))
                starts.append(bytes.count)
                if let value = PQgetvalue(res, Int32(r), Int32(c)), length > 0 {
                    bytes.append(contentsOf: UnsafeRawBufferPointer(start: value, count: length))
                }
                ends.append(bytes.count)
            }
        }
        let storage = PostgresResultStorage(
            columnNames: names, columnTypes: types, bytes: bytes, starts: starts, ends: ends, rowCount: rows)
        return PostgresResult(storage: storage, affectedRows: affected)
    }

    // MARK: Pool support

    /// Cheap check for an idle pooled connection, without hopping onto its thread: `true`
    /// when the socket has nothing to read (the normal case), `false` when closed, `nil` when
    /// the server sent something (a termination notice, EOF after a restart, a notice) and
    /// ``checkIncoming()`` must look.
    nonisolated func idleProbe() -> Bool? {
        let (closed, socket) = shared.withLock { ($0.closed, $0.socket) }
        if closed || socket < 0 { return false }
        var fds = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&fds, 1, 0)
        if ready == 0 { return true }
        return nil
    }

    /// Reads whatever the server sent to an idle connection; false when the connection is dead.
    func checkIncoming() -> Bool {
        guard let pg else { return false }
        // Read until the socket is quiet: a terminated session sends an ErrorResponse and
        // then EOF, and libpq notices the EOF only on a later read.
        for _ in 0..<16 {
            if PQconsumeInput(pg) == 0 || PQstatus(pg) == CONNECTION_BAD {
                markBroken()
                return false
            }
            while let notify = PQnotifies(pg) { PQfreemem(notify) }
            var fds = pollfd(fd: PQsocket(pg), events: Int16(POLLIN), revents: 0)
            if poll(&fds, 1, 0) == 0 { return true }
        }
        return true
    }

    /// Whether the pool may reuse this connection: open and not inside a transaction.
    nonisolated var isReusable: Bool {
        shared.withLock { !$0.closed && $0.idle && !$0.inFlight }
    }
}

/// Sends a cancel request for the statement running on the connection `cancel` belongs to.
/// Sends the cancel again every 250 ms while round `round` is still in flight (for at most
/// 30 s). PostgreSQL ignores a cancel that reaches a backend still reading the command, so a
/// cancel sent right after the statement (a backend not scheduled yet, a loaded machine) could
/// be lost, and the statement ran to its end: a 60 s sleep in a CI run. A cancel that reaches
/// the backend after the statement ended is ignored the same way, and the next statement
/// cannot begin while this round is in flight, so a repeat never cancels the wrong one.
func cancelUntilDone(_ shared: Locked<ConnectionShared>, round: UInt64) {
    Task.detached {
        for _ in 0..<120 {
            try? await Task.sleep(for: .milliseconds(250))
            let again = shared.withLock { s -> Bool in
                guard s.inFlight, s.round == round, s.cancelRequested, let cancel = s.cancel else { return false }
                sendCancel(cancel)
                return true
            }
            if !again { return }
        }
    }
}

func sendCancel(_ cancel: OpaquePointer) {
    var errbuf = [CChar](repeating: 0, count: 256)
    _ = PQcancel(cancel, &errbuf, 256)
}

private let noticeProcessor: PQnoticeProcessor = { context, message in
    guard let context, let message else { return }
    let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
    sink.logger.debug("postgres notice", metadata: ["pg.notice": "\(String(cString: message).trimmingSpaces)"])
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) } + [nil])
}

/// Parameters encoded once in text format: one buffer, zero-terminated values.
struct EncodedParameters: Sendable {
    var types: [UInt32] = []
    var buffer: [UInt8] = []
    var offsets: [Int] = []

    init(_ binds: [(any PostgresEncodable)?]) throws(PostgresError) {
        for (i, bind) in binds.enumerated() {
            guard let bind, !bind.isPostgresNull else {
                types.append(bind?.postgresDataType.oid ?? 0)
                offsets.append(-1)
                continue
            }
            types.append(bind.postgresDataType.oid)
            offsets.append(buffer.count)
            do {
                try bind.encodePostgresText(into: &buffer)
            } catch {
                var e = error
                e.message = "parameter $\(i + 1): " + e.message
                throw e
            }
            buffer.append(0)
        }
    }

    var count: Int { types.count }
    var typeKey: String { types.map(String.init).joined(separator: ",") + "|" }

    func withPointers<R>(_ body: (UnsafePointer<UInt32>?, UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        buffer.withUnsafeBufferPointer { bytes in
            let base = bytes.baseAddress.map { UnsafeRawPointer($0) }
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                guard offset >= 0, let base else { return nil }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return types.withUnsafeBufferPointer { types in
                pointers.withUnsafeBufferPointer { values in
                    body(types.baseAddress, values.baseAddress)
                }
            }
        }
    }
}

