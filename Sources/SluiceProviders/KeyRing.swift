import SluiceSupport

/// A provider's API keys, each with an id (its name in the configuration, never the secret).
/// A call either names the key admission chose for it (a key pool with per-key limits) or takes
/// the next one round-robin, so load spreads over keys.
struct KeyRing: Sendable {
    private let keys: [(id: String, key: Redacted)]
    private let counter = Locked(0)

    /// - Parameter ids: one per key; missing ids are positional (`key-1`, `key-2`, …).
    init(_ keys: [Redacted], ids: [String] = []) {
        self.keys = keys.enumerated().compactMap { index, key in
            key.isEmpty ? nil : (index < ids.count ? ids[index] : "key-\(index + 1)", key)
        }
    }

    /// The key for the next call, nil when the provider has none.
    func next() -> Redacted? {
        guard !keys.isEmpty else { return nil }
        let index = counter.withLock { value -> Int in
            defer { value &+= 1 }
            return value
        }
        return keys[Int(UInt(bitPattern: index) % UInt(keys.count))].key
    }

    /// The key called `id`, nil when there is none.
    func key(id: String) -> Redacted? {
        keys.first { $0.id == id }?.key
    }

    /// The keys' ids, in configuration order.
    var ids: [String] { keys.map(\.id) }

    /// All key values, for redaction.
    var revealedValues: [String] { keys.map(\.key.revealed) }
}
