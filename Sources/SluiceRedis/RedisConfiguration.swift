public import SluiceSupport

/// How to reach and talk to one Redis server.
///
/// Build one from a URL (``init(url:)``) or from fields (``init(host:port:password:username:database:)``);
/// the timeouts are plain stored properties with documented defaults.
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// Server host name or IP address. Default `127.0.0.1`.
    public var host: String
    /// Server TCP port. Default `6379`.
    public var port: Int
    /// Password for `AUTH` (nil: no `AUTH`). Never printed.
    public var password: Redacted?
    /// Redis 6+ ACL user name; sent as `AUTH username password` when set together with a password.
    public var username: String?
    /// Logical database selected with `SELECT` after connecting. Default `0` (no `SELECT` sent).
    public var database: Int
    /// Upper bound on establishing the TCP connection (`redisConnectWithTimeout`). Default 2 s.
    public var connectTimeout: Duration
    /// Upper bound on each socket read/write of a command (`redisSetTimeout`, i.e.
    /// `SO_RCVTIMEO`/`SO_SNDTIMEO`). A command whose reply does not arrive in time fails with
    /// ``RedisError/Code/timeout`` and its connection is discarded. Default 2 s.
    public var commandTimeout: Duration

    /// Creates a configuration from its fields.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, password: Redacted? = nil, username: String? = nil,
        database: Int = 0, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(2)
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.username = username
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// - The user and password may be percent-encoded (`%40` for `@`, `%3A` for `:`).
    /// - `host` may be a bracketed IPv6 literal (`[::1]`).
    /// - Port defaults to 6379, database to 0; timeouts get their defaults.
    /// - Anything else (other schemes, query strings, an empty host, a bad port or db) throws
    ///   ``RedisError/Code/invalidURL``; the message never repeats the password.
    public init(url: String) throws(RedisError) {
        func fail(_ why: String) -> RedisError {
            RedisError(code: .invalidURL, message: "invalid Redis URL (\(why)); expected redis://[[user]:password@]host[:port][/db]")
        }
        let scheme = "redis://"
        guard url.hasPrefix(scheme) else { throw fail("scheme must be redis://") }
        var rest = Substring(url.dropFirst(scheme.count))
        if rest.contains("?") || rest.contains("#") { throw fail("query strings and fragments are not supported") }

        var username: String?
        var password: Redacted?
        // The userinfo ends at the *last* '@' before the path, so an unescaped '@' in a password still parses.
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                let pass = userinfo[userinfo.index(after: colon)...]
                guard let u = Hex.percentDecode(user), let p = Hex.percentDecode(pass) else {
                    throw fail("bad percent-encoding in user or password")
                }
                username = u.isEmpty ? nil : u
                password = p.isEmpty ? nil : Redacted(p)
            } else {
                // `redis://secret@host` is the common legacy form: a bare userinfo is a password.
                guard let p = Hex.percentDecode(userinfo) else { throw fail("bad percent-encoding in password") }
                password = p.isEmpty ? nil : Redacted(p)
            }
        }

        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        var path = rest[slash...]
        if path.hasPrefix("/") { path = path.dropFirst() }

        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("unterminated IPv6 literal") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("junk after IPv6 literal") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw fail("missing host") }
        guard !host.contains(where: { $0 == " " || $0 == "@" }) else { throw fail("bad host") }

        var port = 6379
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw fail("port must be 1…65535") }
            port = p
        }
        var database = 0
        if !path.isEmpty {
            guard let d = Int(path), d >= 0 else { throw fail("database must be a non-negative integer") }
            database = d
        }
        self.init(host: String(host), port: port, password: password, username: username, database: database)
    }

    /// `redis://user:<redacted>@host:port/db` — safe to log.
    public var description: String {
        var auth = ""
        if username != nil || password != nil {
            auth = "\(username ?? ""):\(password == nil ? "" : "<redacted>")@"
        }
        let h = host.contains(":") ? "[\(host)]" : host
        return "redis://\(auth)\(h):\(port)/\(database)"
    }

    /// `host:port`, used as error context.
    var serverLabel: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
