/// A Lua script run with ``RedisConnection/eval(_:keys:args:)`` / ``RedisClient/eval(_:keys:args:)``.
///
/// The SHA-1 is computed locally once, when the script value is created, so the hot path is a
/// single `EVALSHA` round trip; the source is sent only when the server answers `NOSCRIPT`
/// (first use, after `SCRIPT FLUSH` or a server restart). Define scripts as `static let`s.
///
/// Scripts must declare every key they touch in `KEYS` (and, for Redis Cluster, give them a
/// common `{hash tag}`); read the clock with `redis.call('TIME')` rather than passing it in.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lower-case hex SHA-1 of ``source`` — the name Redis gives the script.
    public let sha1: String

    /// Wraps a Lua source and computes its SHA-1.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(source.utf8)
    }
}
