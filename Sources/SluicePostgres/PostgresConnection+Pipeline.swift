import CLibPQ

#if canImport(Glibc)
import Glibc
import SluiceSupport
#endif

extension PostgresConnection {
    /// Sends all statements in one round trip using libpq's pipeline mode (PostgreSQL ≥ 14
    /// client library) and returns their results in order.
    ///
    /// The statements are followed by a single Sync, so outside an explicit transaction they
    /// run as **one implicit transaction**: if statement *k* fails, the statements before it
    /// are rolled back, the ones after it are skipped by the server, and this throws statement
    /// *k*'s error (its message names the statement's position). Inside ``withTransaction(_:)``
    /// the failure aborts the surrounding transaction.
    ///
    /// Sending is non-blocking and interleaved with reading, so large batches cannot deadlock
    /// on full socket buffers.
    public func pipeline(_ statements: [(sql: String, binds: [(any PostgresEncodable)?])]) async throws(PostgresError) -> [PostgresResult] {
        var encoded: [(String, EncodedParameters)] = []
        encoded.reserveCapacity(statements.count)
        for (index, statement) in statements.enumerated() {
            do {
                encoded.append((statement.sql, try EncodedParameters(statement.binds)))
            } catch {
                var e = error
                e.message = "pipeline statement \(index + 1): " + e.message
                throw e
            }
        }
        if encoded.isEmpty { return [] }
        return try await cancellable { () throws(PostgresError) -> [PostgresResult] in
            try self.runPipeline(encoded)
        }
    }

    private func runPipeline(_ statements: [(String, EncodedParameters)]) throws(PostgresError) -> [PostgresResult] {
        let pg = try live()
        try beginInFlight(cancellable: true)
        defer { endInFlight() }
        guard PQenterPipelineMode(pg) == 1 else {
            throw PostgresError(code: .protocolViolation, message: "could not enter pipeline mode: \(scrub(String(cString: PQerrorMessage(pg))))")
        }
        // Any failure while sending leaves libpq's pipeline state unknowable: close.
        func abandon(_ what: String) -> PostgresError {
            let error = connectionError(pg, doing: what)
            close()
            return PostgresError(code: .connectionClosed, message: error.message + " (connection closed)")
        }
        _ = PQsetnonblocking(pg, 1)
        for (sql, parameters) in statements {
            let sent = parameters.withPointers { types, values in
                PQsendQueryParams(pg, sql, Int32(parameters.count), types, values, nil, nil, 0)
            }
            guard sent == 1 else { throw abandon("queueing a pipeline statement") }
            guard flush(pg) else { throw abandon("sending the pipeline") }
        }
        guard PQpipelineSync(pg) == 1, flush(pg) else { throw abandon("sending the pipeline sync") }
        _ = PQsetnonblocking(pg, 0)
        afterSend()

        var results: [PostgresResult] = []
        results.reserveCapacity(statements.count)
        var firstError: PostgresError?
        for index in statements.indices {
            var result = PostgresResult()
            while let res = PQgetResult(pg) {
                switch PQresultStatus(res) {
                case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                    result = makeResult(res)
                case PGRES_PIPELINE_ABORTED:
                    break
                default:
                    if firstError == nil {
                        var error = serverError(res)
                        error.message = "pipeline statement \(index + 1) of \(statements.count) failed: " + error.message
                        firstError = error.attaching(query: statements[index].0, scrubbing: configuration.password)
                    }
                }
                PQclear(res)
            }
            if PQstatus(pg) == CONNECTION_BAD { throw closedError(pg, cause: firstError) }
            results.append(result)
        }
        guard let sync = PQgetResult(pg) else { throw abandon("reading the pipeline sync") }
        let syncStatus = PQresultStatus(sync)
        PQclear(sync)
        guard syncStatus == PGRES_PIPELINE_SYNC else { throw abandon("reading the pipeline sync") }
        _ = PQexitPipelineMode(pg)
        if var error = firstError {
            if error.sqlState == "57014", shared.withLock({ $0.cancelRequested }) { error.code = .cancelled }
            throw error
        }
        return results
    }

    /// Flushes libpq's output buffer of a non-blocking connection, reading input while the
    /// socket is not writable so the server never blocks on a full send buffer.
    private func flush(_ pg: OpaquePointer) -> Bool {
        while true {
            let pending = PQflush(pg)
            if pending == 0 { return true }
            if pending < 0 { return false }
            var fds = pollfd(fd: PQsocket(pg), events: Int16(POLLIN | POLLOUT), revents: 0)
            if poll(&fds, 1, -1) < 0, errno != EINTR { return false }
            if fds.revents & Int16(POLLIN) != 0, PQconsumeInput(pg) == 0 { return false }
        }
    }
}
