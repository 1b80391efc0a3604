import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The SSRF guard of webhook delivery: resolves an endpoint's host and decides, before any
/// connection, whether it may be called. Loopback, private, link-local, multicast, unspecified,
/// shared (CGNAT), reserved and cloud-metadata addresses — IPv4 and IPv6, including IPv4 written
/// inside IPv6 (mapped, NAT64, 6to4) — are refused unless an allow-listed network contains them.
/// Plain `http` is allowed only to allow-listed addresses. The dispatcher then connects to the
/// address that was checked (``SluiceHTTP/HTTPRequest/pinnedAddress``), so a second DNS answer
/// (rebinding) cannot move the connection elsewhere.
public struct WebhookAddressGuard: Sendable {
    /// An IPv4 or IPv6 network (`a.b.c.d/n`, `x:y::/n`; a bare address is a /32 or /128).
    public struct Network: Sendable, Hashable, CustomStringConvertible {
        /// 4 or 16 bytes, host bits zero.
        public let bytes: [UInt8]
        public let prefix: Int

        /// Parses `text` (CIDR or a bare address); nil when it is neither.
        public init?(_ text: String) {
            let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 1 || parts.count == 2, let address = IPAddress(String(parts[0])) else { return nil }
            let bits = address.bytes.count * 8
            var prefix = bits
            if parts.count == 2 {
                guard let value = Int(parts[1]), value >= 0, value <= bits else { return nil }
                prefix = value
            }
            self.prefix = prefix
            self.bytes = Self.masked(address.bytes, prefix)
        }

        init(bytes: [UInt8], prefix: Int) {
            self.bytes = Self.masked(bytes, prefix)
            self.prefix = prefix
        }

        static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
            bytes.enumerated().map { index, byte in
                let keep = max(0, min(8, prefix - index * 8))
                return keep == 8 ? byte : keep == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
            }
        }

        /// Whether `address` (of the same family) is in this network.
        public func contains(_ address: IPAddress) -> Bool {
            address.bytes.count == bytes.count && Self.masked(address.bytes, prefix) == bytes
        }

        public var description: String { "\(IPAddress(bytes: bytes))/\(prefix)" }
    }

    /// A numeric IPv4 (4 bytes) or IPv6 (16 bytes) address.
    public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
        public let bytes: [UInt8]

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// Parses a numeric address (IPv6 optionally in brackets); nil for anything else.
        public init?(_ text: String) {
            var text = text
            if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            var v4 = in_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                bytes = withUnsafeBytes(of: &v4) { Array($0) }
                return
            }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, text, &v6) == 1 {
                bytes = withUnsafeBytes(of: &v6) { Array($0) }
                return
            }
            return nil
        }

        public var isIPv6: Bool { bytes.count == 16 }

        /// The conventional text form (`127.0.0.1`, `::1`).
        public var description: String {
            var buffer = [CChar](repeating: 0, count: 64)
            var copy = bytes
            let family = isIPv6 ? AF_INET6 : AF_INET
            _ = copy.withUnsafeMutableBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
            return String(cString: buffer)
        }
    }

    /// Networks whose addresses are permitted whatever their class, and over plain http.
    public var allowed: [Network]

    /// A guard that permits only public addresses, plus `allowed`.
    public init(allowed: [Network] = []) {
        self.allowed = allowed
    }

    /// Parses `SLUICE_WEBHOOK_ALLOW` (comma-separated networks, e.g. `127.0.0.1/32,::1/128`).
    public static func allowList(_ text: String) throws(WebhookError) -> [Network] {
        var networks: [Network] = []
        for item in text.split(separator: ",") where !item.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let network = Network(String(item)) else {
                throw WebhookError(.invalidConfiguration, "webhook allow list: '\(item)' is not an address or CIDR network",
                                   rule: "allow")
            }
            networks.append(network)
        }
        return networks
    }

    // MARK: Classes

    private static func v4(_ text: String) -> Network { Network(text)! }

    /// Cloud metadata services: AWS/GCP/Azure (169.254.169.254), AWS ECS (169.254.170.2), Oracle
    /// (192.0.0.192), Alibaba (100.100.100.200), AWS IPv6 (fd00:ec2::254).
    static let metadata: [Network] = ["169.254.169.254/32", "169.254.170.2/32", "192.0.0.192/32",
                                      "100.100.100.200/32", "fd00:ec2::254/128"].map(v4)
    static let v4Classes: [(Network, String)] = [
        (v4("0.0.0.0/8"), "unspecified"),
        (v4("10.0.0.0/8"), "private"),
        (v4("100.64.0.0/10"), "shared"),
        (v4("127.0.0.0/8"), "loopback"),
        (v4("169.254.0.0/16"), "link_local"),
        (v4("172.16.0.0/12"), "private"),
        (v4("192.0.0.0/24"), "reserved"),
        (v4("192.0.2.0/24"), "reserved"),
        (v4("192.88.99.0/24"), "reserved"),
        (v4("192.168.0.0/16"), "private"),
        (v4("198.18.0.0/15"), "reserved"),
        (v4("198.51.100.0/24"), "reserved"),
        (v4("203.0.113.0/24"), "reserved"),
        (v4("224.0.0.0/4"), "multicast"),
        (v4("240.0.0.0/4"), "reserved"),
    ]
    static let v6Classes: [(Network, String)] = [
        (v4("::/128"), "unspecified"),
        (v4("::1/128"), "loopback"),
        (v4("100::/64"), "reserved"),
        (v4("2001:db8::/32"), "reserved"),
        (v4("fc00::/7"), "private"),
        (v4("fe80::/10"), "link_local"),
        (v4("fec0::/10"), "private"),
        (v4("ff00::/8"), "multicast"),
    ]

    /// The IPv4 address an IPv6 address carries, if it is one of the forms that reach an IPv4
    /// host: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or
    /// 6to4 (`2002:aabb:ccdd::`).
    static func embeddedIPv4(_ address: IPAddress) -> IPAddress? {
        let b = address.bytes
        guard b.count == 16 else { return nil }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return IPAddress(bytes: Array(b[12..<16])) }
        if b[0..<12].allSatisfy({ $0 == 0 }) && !(b[12..<15].allSatisfy { $0 == 0 }) { return IPAddress(bytes: Array(b[12..<16])) }
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4..<12].allSatisfy({ $0 == 0 }) {
            return IPAddress(bytes: Array(b[12..<16]))
        }
        if b[0] == 0x20 && b[1] == 0x02 { return IPAddress(bytes: Array(b[2..<6])) }
        return nil
    }

    /// The refused class of `address` (`loopback`, `private`, `link_local`, `multicast`,
    /// `unspecified`, `shared`, `metadata`, `reserved`), or nil for a public address. Ignores
    /// the allow list.
    public static func refusedClass(of address: IPAddress) -> String? {
        if metadata.contains(where: { $0.contains(address) }) { return "metadata" }
        if let inner = embeddedIPv4(address) { return refusedClass(of: inner) }
        for (network, name) in address.isIPv6 ? v6Classes : v4Classes where network.contains(address) { return name }
        if address.isIPv6 && (address.bytes[0] & 0xE0) != 0x20 { return "reserved" }  // outside 2000::/3 (global unicast)
        if !address.isIPv6 && address.bytes == [255, 255, 255, 255] { return "reserved" }
        return nil
    }

    /// Whether an allow-listed network contains `address`.
    public func isAllowListed(_ address: IPAddress) -> Bool {
        allowed.contains { $0.contains(address) } || (Self.embeddedIPv4(address).map { inner in allowed.contains { $0.contains(inner) } } ?? false)
    }

    /// Checks one address for a URL of `scheme`; throws `.refusedAddress` naming the class.
    public func check(_ address: IPAddress, scheme: String, host: String) throws(WebhookError) {
        if isAllowListed(address) { return }
        if let refused = Self.refusedClass(of: address) {
            throw WebhookError(.refusedAddress,
                               "\(host) resolves to \(address), a \(refused.replacingOccurrences(of: "_", with: "-")) address; "
                               + "allow it with SLUICE_WEBHOOK_ALLOW if it is meant to receive webhooks", rule: refused)
        }
        if scheme != "https" {
            throw WebhookError(.refusedAddress, "webhooks to \(host) need https (plain http only to allow-listed addresses)",
                               rule: "https_required")
        }
    }

    /// An endpoint as the guard split it up.
    public struct Endpoint: Sendable, Hashable {
        public var scheme: String
        /// The host as written in the URL (IPv6 without brackets).
        public var host: String
        public var port: Int
        /// Whether the host is a numeric address (then nothing is resolved or pinned).
        public var hostIsAddress: Bool
    }

    /// Splits an absolute http(s) URL.
    public static func endpoint(of url: String) throws(WebhookError) -> Endpoint {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty else {
            throw WebhookError(.invalidURL, "the webhook URL is not an absolute http(s) URL with a host")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard port > 0 && port < 65536 else { throw WebhookError(.invalidURL, "the webhook URL's port is out of range") }
        return Endpoint(scheme: scheme, host: host, port: port, hostIsAddress: IPAddress(host) != nil)
    }

    /// Resolves the endpoint's host (a numeric host is itself) and returns the first address
    /// the guard permits; throws `.refusedAddress` (naming the first refused address's class)
    /// when none is, `.resolutionFailed` when the name does not resolve.
    public func permittedAddress(for endpoint: Endpoint) async throws(WebhookError) -> IPAddress {
        let addresses: [IPAddress]
        if let literal = IPAddress(endpoint.host) {
            addresses = [literal]
        } else {
            addresses = try await Self.resolve(endpoint.host)
        }
        var firstRefusal: WebhookError?
        for address in addresses {
            do {
                try check(address, scheme: endpoint.scheme, host: endpoint.host)
                return address
            } catch {
                if firstRefusal == nil { firstRefusal = error }
            }
        }
        throw firstRefusal ?? WebhookError(.resolutionFailed, "\(endpoint.host) resolved to no address")
    }

    /// getaddrinfo on a Dispatch thread (it blocks; the cooperative pool must not).
    static func resolve(_ host: String) async throws(WebhookError) -> [IPAddress] {
        let result: Result<[IPAddress], WebhookError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_family = AF_UNSPEC
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                let rc = getaddrinfo(host, nil, &hints, &list)
                guard rc == 0, let first = list else {
                    let reason = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
                    continuation.resume(returning: .failure(WebhookError(.resolutionFailed, "\(host) did not resolve: \(reason)")))
                    return
                }
                defer { freeaddrinfo(first) }
                var addresses: [IPAddress] = []
                var node: UnsafeMutablePointer<addrinfo>? = first
                while let current = node {
                    if let sa = current.pointee.ai_addr {
                        if current.pointee.ai_family == AF_INET {
                            let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                                withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                            }
                            addresses.append(IPAddress(bytes: bytes))
                        } else if current.pointee.ai_family == AF_INET6 {
                            let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                                withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                            }
                            addresses.append(IPAddress(bytes: bytes))
                        }
                    }
                    node = current.pointee.ai_next
                }
                var seen = Set<IPAddress>()
                continuation.resume(returning: .success(addresses.filter { seen.insert($0).inserted }))
            }
        }
        return try result.get()
    }
}
