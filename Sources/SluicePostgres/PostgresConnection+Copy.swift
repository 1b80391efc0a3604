import CLibPQ
import SluiceSupport

extension PostgresConnection {
    /// Runs `COPY … FROM STDIN` and streams `chunks` to the server with `PQputCopyData`; the
    /// bytes are in whatever format the SQL names (text by default, or `WITH (FORMAT csv)`).
    /// Chunks need not align with rows. Returns the number of rows copied.
    ///
    /// A malformed row fails the whole COPY (nothing is inserted) with `.copyFailed` carrying
    /// the server's SQLSTATE and fields (e.g. `22P02`, with the line in `message`/`detail`);
    /// the connection stays usable. Cancelling the task ends the COPY with an error message
    /// (`.cancelled`) and the connection stays usable too.
    public func copyFrom<S: Sequence & Sendable>(_ sql: String, chunks: S) async throws(PostgresError) -> Int
    where S.Element == [UInt8] {
        try await cancellable(sql: sql) { () throws(PostgresError) -> Int in
            try self.runCopy(sql, chunks)
        }
    }

    private func runCopy<S: Sequence>(_ sql: String, _ chunks: S) throws(PostgresError) -> Int where S.Element == [UInt8] {
        let pg = try live()
        try beginInFlight(cancellable: true)
        defer { endInFlight() }
        guard PQsendQuery(pg, sql) == 1 else { throw connectionError(pg, doing: "sending the COPY statement") }
        afterSend()
        guard let first = PQgetResult(pg) else {
            throw PostgresError(code: .protocolViolation, message: "no result for the COPY statement")
        }
        guard PQresultStatus(first) == PGRES_COPY_IN else {
            let status = PQresultStatus(first)
            var error = status == PGRES_FATAL_ERROR
                ? serverError(first)
                : PostgresError(code: .invalidUsage, message: "copyFrom needs a COPY … FROM STDIN statement")
            PQclear(first)
            // Drain (and reject any other COPY mode) so the connection is idle again.
            do {
                _ = try collect(pg)
            } catch let drained where drained.code == .connectionClosed {
                throw drained
            } catch {}
            if error.code == .server, error.sqlState == "57014", shared.withLock({ $0.cancelRequested }) { error.code = .cancelled }
            throw error
        }
        PQclear(first)
        var abortReason: String?
        for chunk in chunks where !chunk.isEmpty {
            if shared.withLock({ $0.cancelRequested }) {
                abortReason = "cancelled by the client"
                break
            }
            let sent = chunk.withUnsafeBytes { buffer in
                PQputCopyData(pg, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buffer.count))
            }
            if sent != 1 {
                throw connectionError(pg, doing: "sending COPY data")
            }
        }
        guard PQputCopyEnd(pg, abortReason) == 1 else { throw connectionError(pg, doing: "ending COPY") }
        do {
            return try collect(pg).affectedRows
        } catch {
            var failure = error
            if failure.code == .server {
                failure.code = failure.sqlState == "57014" || abortReason != nil ? .cancelled : .copyFailed
                if failure.code == .copyFailed { failure.message = "COPY failed: " + failure.message }
            }
            throw failure
        }
    }
}
