import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Plain TCP listeners on 127.0.0.1 for the cases Hummingbird cannot produce: a port whose
/// accept queue is full (connect hangs) and a response cut short of its Content-Length.
final class RawListener: Sendable {
    let fd: Int32
    let port: Int

    /// Binds 127.0.0.1:0 and listens with `backlog` (`nil`: bound but not listening, so
    /// connections are refused while the port stays reserved).
    init(backlog: Int32?) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, backlog.map({ listen(fd, $0) }) ?? 0 == 0 else { close(fd); throw TestFailure() }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// Opens non-blocking connections to this listener (to fill its accept queue); returns their fds.
    func fillAcceptQueue(connections: Int) -> [Int32] {
        (0..<connections).map { _ in
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            return client
        }
    }

    /// On a background thread: accepts one connection, reads the request head, writes
    /// `response`, then closes the connection.
    func serveOnce(response: [UInt8]) {
        let fd = self.fd
        let thread = Thread {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { return }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !received.ends(with: Array("\r\n\r\n".utf8)) {
                let n = read(connection, &buffer, buffer.count)
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            _ = response.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            usleep(50_000)
            close(connection)
        }
        thread.start()
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
