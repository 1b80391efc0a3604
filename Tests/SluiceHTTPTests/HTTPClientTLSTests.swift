import Foundation
import SluiceHTTP
import Testing

/// `openssl s_server -www` with a fresh self-signed certificate for 127.0.0.1.
final class OpenSSLServer: Sendable {
    let process: Process
    let port: Int
    let certificatePath: String

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = directory.appendingPathComponent("key.pem").path
        let certificate = directory.appendingPathComponent("cert.pem").path
        let request = Process()
        request.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        request.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
            "-keyout", key, "-out", certificate,
        ]
        request.standardError = FileHandle.nullDevice
        try request.run()
        request.waitUntilExit()
        guard request.terminationStatus == 0 else { throw TestFailure() }

        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", certificate, "-key", key, "-www"]
        let output = Pipe()
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        // The first line that matters is "ACCEPT 127.0.0.1:<port>".
        var text = ""
        while !text.contains("ACCEPT") || !text.hasSuffix("\n") {
            let data = output.fileHandleForReading.readData(ofLength: 1)
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT") }),
              let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            server.terminate()
            throw TestFailure()
        }
        self.process = server
        self.port = port
        self.certificatePath = certificate
    }

    deinit { process.terminate() }
}

@Suite("HTTPClient TLS")
struct HTTPClientTLSTests {
    @Test("TLS verification is on by default: a self-signed certificate fails with .tls")
    func selfSignedRejectedByDefault() async throws {
        let server = try OpenSSLServer()
        let client = makeClient()
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        }
        #expect(error?.code == .tls)
        await client.shutdown()
    }

    @Test("the same server is accepted when its certificate is the configured CA, or with verification off")
    func trustedOrUnverifiedAccepted() async throws {
        let server = try OpenSSLServer()
        let trusting = makeClient { $0.caBundlePath = server.certificatePath }
        let response = try await trusting.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        #expect(response.status == 200)
        #expect(try await response.body.collect(upTo: 1 << 20).count > 0)
        await trusting.shutdown()

        let unverified = makeClient { $0.verifyTLS = false }
        let second = try await unverified.execute(Request(url: "https://127.0.0.1:\(server.port)/"))
        #expect(second.status == 200)
        _ = try await second.body.collect(upTo: 1 << 20)
        await unverified.shutdown()
    }
}
