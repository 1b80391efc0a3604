import Foundation
import SluicePostgres

/// Live progress: on a terminal a small table redrawn in place every second (jobs per lane and
/// state, throughput, webhooks); in a pipe (CI, the test suite) one line every few seconds.
struct DemoProgress {
    struct LaneRow {
        var lane: String
        var queued = 0, waiting = 0, running = 0, succeeded = 0, dead = 0, cancelled = 0
    }

    struct Snapshot {
        var lanes: [LaneRow] = []
        var terminal: Int { lanes.reduce(0) { $0 + $1.succeeded + $1.dead + $1.cancelled } }
        var total: Int { lanes.reduce(0) { $0 + $1.queued + $1.running + $1.succeeded + $1.dead + $1.cancelled } }
    }

    static func snapshot(_ postgres: PostgresClient) async throws -> Snapshot {
        let result = try await postgres.query("""
            SELECT lane::text,
                   count(*) FILTER (WHERE state = 'queued')::int8,
                   count(*) FILTER (WHERE state = 'queued' AND wait_reason IS NOT NULL)::int8,
                   count(*) FILTER (WHERE state = 'running')::int8,
                   count(*) FILTER (WHERE state = 'succeeded')::int8,
                   count(*) FILTER (WHERE state = 'dead')::int8,
                   count(*) FILTER (WHERE state = 'cancelled')::int8
              FROM sluice.jobs GROUP BY lane ORDER BY lane
            """, [])
        var snapshot = Snapshot()
        for row in result.rows {
            snapshot.lanes.append(LaneRow(
                lane: try row.decode(String.self, at: 0), queued: try row.decode(Int.self, at: 1), waiting: try row.decode(Int.self, at: 2),
                running: try row.decode(Int.self, at: 3), succeeded: try row.decode(Int.self, at: 4), dead: try row.decode(Int.self, at: 5),
                cancelled: try row.decode(Int.self, at: 6)))
        }
        return snapshot
    }

    let terminal: Bool
    private(set) var drawnLines = 0
    private var lastLine = ContinuousClock.now - .seconds(60)

    init() { terminal = isatty(STDOUT_FILENO) == 1 }

    /// Prints `message` above the live table (or as a line in a pipe).
    mutating func event(_ message: String) {
        erase()
        print(message)
    }

    mutating func erase() {
        guard terminal, drawnLines > 0 else { return }
        print("\u{1B}[\(drawnLines)A\u{1B}[J", terminator: "")
        drawnLines = 0
    }

    mutating func draw(_ s: Snapshot, elapsed: Double, enqueued: Int, planned: Int, throughput: Double, webhooks: Int) {
        let done = s.terminal
        if !terminal {
            guard ContinuousClock.now - lastLine >= .seconds(5) else { return }
            lastLine = .now
            let queued = s.lanes.reduce(0) { $0 + $1.queued }, running = s.lanes.reduce(0) { $0 + $1.running }
            print(String(format: "  %5.1f s  enqueued %d/%d  queued %d  running %d  finished %d  %.0f jobs/s  webhooks %d",
                         elapsed, enqueued, planned, queued, running, done, throughput, webhooks))
            return
        }
        erase()
        var lines = [String(format: "  %5.1f s   %4.0f jobs/s   finished %d of %d (enqueued %d)   webhooks verified %d",
                            elapsed, throughput, done, planned, enqueued, webhooks),
                     "  lane          queued  waiting  running  succeeded   dead"]
        for lane in s.lanes {
            lines.append(String(format: "  %-12@ %7d  %7d  %7d  %9d  %5d", lane.lane as NSString, lane.queued, lane.waiting, lane.running,
                                lane.succeeded, lane.dead))
        }
        lines.append("  (waiting = queued, held back by a rate limit or budget; Ctrl-C stops the demo and cleans up)")
        for line in lines { print(line) }
        drawnLines = lines.count
        fflush(nil)
    }
}
