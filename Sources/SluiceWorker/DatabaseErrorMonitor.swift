import Logging
import Sluice
import SluicePostgres
import SluiceSupport

/// Sorts the database errors a worker's loops meet (claim, heartbeat, completion, rescue,
/// release, pruning) into expected and unexpected ones, logs them and counts the unexpected
/// ones by SQLSTATE.
///
/// *Expected* are the failures of an unreachable or restarting database, after which the
/// loops retry: no SQLSTATE at all (the connection closed, the pool timed out or closed, the
/// task was cancelled), class `08` (connection exception), `57P01`–`57P03` (the server is
/// shutting down or starting), `53300` (too many connections), and `57014` (query cancelled)
/// when the calling task was cancelled (the worker stopping). They are logged as warnings.
///
/// Everything else is *unexpected* — a deadlock (`40P01`), a serialization failure, a constraint
/// or syntax error, an internal error — and means a bug in Sluice or a damaged schema even when
/// the loop carries on: it is logged at error level (with the operation and the SQLSTATE) and
/// counted (``Worker/unexpectedDatabaseErrors``).
final class DatabaseErrorMonitor: Sendable {
    private let logger: Logger
    private let counts = Locked<[String: Int]>([:])

    init(logger: Logger) {
        self.logger = logger
    }

    /// Unexpected errors so far, by SQLSTATE.
    var unexpected: [String: Int] { counts.current }

    /// Whether an error with this SQLSTATE (nil: no SQLSTATE) is an expected one.
    static func isExpected(sqlState: String?) -> Bool {
        guard let sqlState else { return true }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(sqlState)
    }

    /// The SQLSTATE behind an error the store (or the pool) threw, if the server sent one.
    static func sqlState(of error: any Error) -> String? {
        if let error = error as? SluiceError { return error.underlying?.sqlState }
        if let error = error as? PostgresError { return error.sqlState }
        if let error = error as? WorkerError { return error.underlying.flatMap(sqlState(of:)) }
        return nil
    }

    /// Logs `error` from `operation` (`"claim"`, `"heartbeat"`, …) with `message`; an
    /// unexpected one at error level, counted.
    func record(_ error: any Error, _ message: @autoclosure () -> Logger.Message, operation: String,
                metadata: Logger.Metadata = [:]) {
        let state = Self.sqlState(of: error)
        var metadata = metadata
        metadata["operation"] = "\(operation)"
        metadata["error"] = "\(error)"
        // 57014 (query_canceled) in a cancelled task is the worker cancelling its own statement
        // as it stops (a heartbeat in flight at shutdown), not a fault of the database.
        if Self.isExpected(sqlState: state) || (state == "57014" && Task.isCancelled) {
            logger.warning(message(), metadata: metadata)
            return
        }
        let code = state ?? "?"
        let total = counts.withLock { counts -> Int in
            counts[code, default: 0] += 1
            return counts.values.reduce(0, +)
        }
        metadata["sqlstate"] = "\(code)"
        metadata["unexpected_errors"] = "\(total)"
        logger.error("\(message()) (unexpected SQLSTATE \(code))", metadata: metadata)
    }
}
