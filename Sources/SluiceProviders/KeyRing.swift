import SluiceSupport

/// A provider's API keys, handed out round-robin (one per call) so load spreads over keys.
struct KeyRing: Sendable {
    private let keys: [Redacted]
    private let counter = Locked(0)

    init(_ keys: [Redacted]) {
        self.keys = keys.filter { !$0.isEmpty }
    }

    /// The key for the next call, nil when the provider has none.
    func next() -> Redacted? {
        guard !keys.isEmpty else { return nil }
        let index = counter.withLock { value -> Int in
            defer { value &+= 1 }
            return value
        }
        return keys[Int(UInt(bitPattern: index) % UInt(keys.count))]
    }

    /// All key values, for redaction.
    var revealedValues: [String] { keys.map(\.revealed) }
}
