/// Lets the pool stop a running LISTEN loop at shutdown.
struct ListenerHandle: Sendable {
    let stop: @Sendable () -> Void
}
