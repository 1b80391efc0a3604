public import SluiceSupport
import Foundation

/// Where and how to connect to PostgreSQL.
///
/// Build it field by field or from a URL / libpq conninfo string with ``init(url:)``. The
/// password is a `Redacted`, so printing a configuration never shows it.
public struct PostgresConfiguration: Sendable {
    /// Host name, IP address (IPv6 without brackets) or a Unix-socket directory. Default `localhost`.
    public var host: String
    /// TCP port. Default 5432.
    public var port: Int
    /// User name. Default `postgres`.
    public var user: String
    /// Password, if the server asks for one. Default none.
    public var password: Redacted?
    /// Database name. Default: same as `user`.
    public var database: String
    /// libpq `sslmode`, passed through (`disable`, `prefer`, `require`, `verify-full`…). Default: libpq's (`prefer`).
    public var sslMode: String?
    /// `application_name` shown in `pg_stat_activity`. Default none.
    public var applicationName: String?
    /// How long connecting may take (libpq `connect_timeout`, whole seconds, at least 2). Default 10 s.
    public var connectTimeout: Duration
    /// Any other libpq conninfo keywords (`target_session_attrs`, `keepalives_idle`, `options`…).
    public var options: [String: String]

    /// Creates a configuration from its parts.
    public init(
        host: String = "localhost", port: Int = 5432, user: String = "postgres", password: Redacted? = nil,
        database: String? = nil, sslMode: String? = nil, applicationName: String? = nil,
        connectTimeout: Duration = .seconds(10), options: [String: String] = [:]
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database ?? user
        self.sslMode = sslMode
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
        self.options = options
    }

    /// Parses `postgres://user:pass@host:port/db?sslmode=…&application_name=…` (also
    /// `postgresql://`, percent-decoding, IPv6 `[::1]`) or a libpq conninfo string
    /// `host=… port=… user=… password='…' dbname=…`.
    ///
    /// Query parameters / keywords other than `sslmode`, `application_name` and
    /// `connect_timeout` go to ``options``. Errors have code `.invalidURL` and never echo the password.
    public init(url: String) throws(PostgresError) {
        self.init()
        let trimmed = url.trimmingSpaces
        if trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") {
            try parseURL(trimmed)
        } else if trimmed.contains("=") {
            try parseConninfo(trimmed)
        } else {
            throw PostgresError(
                code: .invalidURL,
                message: "not a postgres:// URL or a key=value conninfo string: \(Self.redactedURL(trimmed))")
        }
    }

    /// The URL with any password replaced by `<redacted>` (for messages).
    static func redactedURL(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else {
            // conninfo: hide the value after password=
            guard let r = url.range(of: "password") else { return url }
            return String(url[..<r.lowerBound]) + "password=<redacted>…"
        }
        let rest = url[schemeEnd.upperBound...]
        // The last '@' anywhere, not only before the '?': a password with an unencoded '?'
        // would otherwise be shown (redacting too much of an odd URL is harmless).
        guard let at = rest.lastIndex(of: "@") else { return url }
        let userinfo = rest[..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<schemeEnd.upperBound]) + userinfo[..<colon] + ":<redacted>" + rest[at...]
    }

    private mutating func parseURL(_ url: String) throws(PostgresError) {
        func fail(_ why: String) -> PostgresError {
            PostgresError(code: .invalidURL, message: "invalid PostgreSQL URL (\(why)): \(Self.redactedURL(url))")
        }
        guard let schemeEnd = url.range(of: "://") else { throw fail("no scheme") }
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        // user info ends at the last '@' (an unencoded '@' or '/' in a password still works).
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                guard let u = Hex.percentDecode(userinfo[..<colon]) else { throw fail("bad percent-encoding in user") }
                guard let p = Hex.percentDecode(userinfo[userinfo.index(after: colon)...]) else {
                    throw fail("bad percent-encoding in password")
                }
                user = u
                password = Redacted(p)
            } else {
                guard let u = Hex.percentDecode(userinfo) else { throw fail("bad percent-encoding in user") }
                user = u
            }
        }
        var hostPort = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("unterminated IPv6 address") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw fail("bad port")
                }
                port = p
            }
        } else if !hostPort.isEmpty {
            if let colon = hostPort.lastIndex(of: ":") {
                guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                    throw fail("bad port")
                }
                port = p
                hostPort = hostPort[..<colon]
            }
            guard let h = Hex.percentDecode(hostPort) else { throw fail("bad percent-encoding in host") }
            if !h.isEmpty { host = h }
        }
        if path.isEmpty {
            database = user
        } else {
            guard let db = Hex.percentDecode(path), !db.contains("/") else { throw fail("bad database name") }
            database = db
        }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, let key = Hex.percentDecode(kv[0]), let value = Hex.percentDecode(kv[1]), !key.isEmpty
            else { throw fail("bad query parameter") }
            try apply(key: key, value: value, fail: fail)
        }
    }

    private mutating func parseConninfo(_ text: String) throws(PostgresError) {
        func fail(_ why: String) -> PostgresError {
            PostgresError(code: .invalidURL, message: "invalid conninfo string (\(why)): \(Self.redactedURL(text))")
        }
        var chars = Array(text.unicodeScalars)[...]
        func skipSpaces() { while let c = chars.first, c == " " || c == "\t" || c == "\n" { chars.removeFirst() } }
        var sawDatabase = false
        while true {
            skipSpaces()
            guard !chars.isEmpty else { break }
            var key = ""
            while let c = chars.first, c != "=", c != " " { key.unicodeScalars.append(c); chars.removeFirst() }
            skipSpaces()
            guard chars.first == "=", !key.isEmpty else { throw fail("expected key=value") }
            chars.removeFirst()
            skipSpaces()
            var value = ""
            if chars.first == "'" {
                chars.removeFirst()
                var closed = false
                while let c = chars.popFirst() {
                    if c == "\\" {
                        guard let n = chars.popFirst() else { break }
                        value.unicodeScalars.append(n)
                    } else if c == "'" {
                        closed = true
                        break
                    } else {
                        value.unicodeScalars.append(c)
                    }
                }
                guard closed else { throw fail("unterminated quoted value") }
            } else {
                while let c = chars.first, c != " ", c != "\t", c != "\n" {
                    chars.removeFirst()
                    if c == "\\", let n = chars.popFirst() { value.unicodeScalars.append(n) } else { value.unicodeScalars.append(c) }
                }
            }
            switch key {
            case "host", "hostaddr": host = value
            case "port":
                guard let p = Int(value), (1...65535).contains(p) else { throw fail("bad port") }
                port = p
            case "user": user = value
            case "password": password = Redacted(value)
            case "dbname":
                database = value
                sawDatabase = true
            default: try apply(key: key, value: value, fail: fail)
            }
        }
        if !sawDatabase { database = user }
    }

    private mutating func apply(key: String, value: String, fail: (String) -> PostgresError) throws(PostgresError) {
        switch key {
        case "sslmode": sslMode = value
        case "application_name": applicationName = value
        case "connect_timeout":
            guard let s = Int(value), s >= 0 else { throw fail("bad connect_timeout") }
            connectTimeout = .seconds(s)
        case "password": password = Redacted(value)
        case "user": user = value
        case "dbname": database = value
        case "host": host = value
        case "port":
            guard let p = Int(value), (1...65535).contains(p) else { throw fail("bad port") }
            port = p
        default: options[key] = value
        }
    }

    /// libpq keyword/value pairs for `PQconnectdbParams` (session settings included).
    func connectionParameters() -> [(String, String)] {
        var params: [(String, String)] = [
            ("host", host), ("port", String(port)), ("user", user), ("dbname", database),
            ("client_encoding", "UTF8"),
        ]
        if let password { params.append(("password", password.revealed)) }
        if let sslMode { params.append(("sslmode", sslMode)) }
        if let applicationName { params.append(("application_name", applicationName)) }
        let seconds = max(2, Int(connectTimeout.components.seconds) + (connectTimeout.components.attoseconds > 0 ? 1 : 0))
        params.append(("connect_timeout", String(seconds)))
        // Decoding relies on ISO dates in UTC and the classic interval format.
        var sessionOptions = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3"
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            if key == "options" { sessionOptions += " " + value } else { params.append((key, value)) }
        }
        params.append(("options", sessionOptions))
        return params
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
