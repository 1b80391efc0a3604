import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// A pipe whose read end the listening thread polls together with the PostgreSQL socket, so
/// another thread can wake it without a timeout loop.
final class WakePipe: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        if readFD >= 0 { close(readFD) }
        if writeFD >= 0 { close(writeFD) }
    }

    /// Wakes the poller (idempotent while unread).
    func signal() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readFD, &buffer, 64) > 0 {}
    }
}

extension PostgresConnection {
    /// Blocks the connection's thread in `poll()` on the PostgreSQL socket and `wake` until
    /// notifications arrive (returned) or `wake` is signalled (returns `[]`). Throws
    /// `.connectionClosed` when the connection breaks.
    func waitForNotifications(wake: WakePipe) throws(PostgresError) -> [PostgresNotification] {
        let pg = try live()
        while true {
            guard PQconsumeInput(pg) == 1, PQstatus(pg) == CONNECTION_OK else { throw closedError(pg, cause: nil) }
            var received: [PostgresNotification] = []
            while let notify = PQnotifies(pg) {
                received.append(
                    PostgresNotification(
                        channel: String(cString: notify.pointee.relname),
                        payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
                        pid: notify.pointee.be_pid))
                PQfreemem(notify)
            }
            if !received.isEmpty { return received }
            var fds = [
                pollfd(fd: PQsocket(pg), events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw PostgresError(code: .protocolViolation, message: "poll() failed with errno \(errno)")
            }
            if fds[1].revents != 0 {
                wake.drain()
                return []
            }
        }
    }
}
