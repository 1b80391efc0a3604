import Foundation
import SluiceHTTP
import SluiceTestScope
import Testing

/// `openssl s_server -www` with a fresh self-signed certificate for 127.0.0.1: a child process
/// of the test, stopped and reaped (and its key files deleted) when the test ends.
struct OpenSSLServer: Sendable {
    let port: Int
    let certificatePath: String

    static func start() async throws -> OpenSSLServer {
        let directory = try TestScope.required(for: "an openssl s_server").temporaryDirectory("sluice-tls")
        let key = directory + "/key.pem"
        let certificate = directory + "/cert.pem"
        let request = try await ChildProcess.run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
            "-keyout", key, "-out", certificate,
        ])
        guard request.status == .exited(0) else { throw TestFailure() }

        let server = try ChildProcess.spawn(
            "/usr/bin/openssl", ["s_server", "-accept", "127.0.0.1:0", "-cert", certificate, "-key", key, "-www"],
            standardOutput: .capture)
        // The first line that matters is "ACCEPT 127.0.0.1:<port>".
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline && server.exitStatus == nil {
            let text = server.standardOutput()
            if let line = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().first(where: { $0.hasPrefix("ACCEPT") }) {
                guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else { throw TestFailure() }
                return OpenSSLServer(port: port, certificatePath: certificate)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("openssl s_server did not report its port: \(server.standardOutput())")
        throw TestFailure()
    }
}

@Suite("HTTPClient TLS", .testScope)
struct HTTPClientTLSTests {
    @Test("TLS verification is on by default: a self-signed certificate fails with .tls")
    func selfSignedRejectedByDefault() async throws {
        let server = try await OpenSSLServer.start()
        let client = makeClient()
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        }
        #expect(error?.code == .tls)
    }

    @Test("the same server is accepted when its certificate is the configured CA, or with verification off")
    func trustedOrUnverifiedAccepted() async throws {
        let server = try await OpenSSLServer.start()
        let trusting = makeClient { $0.caBundlePath = server.certificatePath }
        let response = try await trusting.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        #expect(response.status == 200)
        #expect(try await response.body.collect(upTo: 1 << 20).count > 0)

        let unverified = makeClient { $0.verifyTLS = false }
        let second = try await unverified.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        #expect(second.status == 200)
        _ = try await second.body.collect(upTo: 1 << 20)
    }
}
