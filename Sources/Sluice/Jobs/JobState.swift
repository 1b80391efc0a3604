/// The state of a job. `succeeded`, `dead` and `cancelled` are terminal; a job waiting for a
/// retry is `queued` with a future `runAt`.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case queued
    case running
    case succeeded
    case dead
    case cancelled

    /// Whether the job can change no more.
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .dead, .cancelled: true
        case .queued, .running: false
        }
    }
}
