import Foundation
import Logging
import SluiceJSON
import SluiceSupport
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    func object(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        guard case .object(let fields) = try JSONValue.parse(bytes) else {
            Issue.record("not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
            return [:]
        }
        return fields
    }

    @Test func rendersTheFieldsAndTheMetadata() throws {
        let date = Date(timeIntervalSince1970: 1_796_444_090.1239)
        let line = JSONLogHandler.render(
            date: date, level: .warning, label: "sluice.worker", message: "job \"dead\"-lettered\n",
            metadata: ["job_id": "0193", "attempt": "3", "tenant": .stringConvertible("acme"),
                       "lanes": .array(["interactive", "batch"]), "usage": .dictionary(["input": "12"]), "message": "clash"])
        let fields = try object(line)
        #expect(fields["timestamp"] == .string("2026-12-05T04:14:50.123Z"))
        #expect(fields["level"] == .string("warning"))
        #expect(fields["logger"] == .string("sluice.worker"))
        #expect(fields["message"] == .string("job \"dead\"-lettered\n"))
        #expect(fields["job_id"] == .string("0193"))
        #expect(fields["attempt"] == .string("3"))
        #expect(fields["tenant"] == .string("acme"))
        #expect(fields["lanes"] == .array([.string("interactive"), .string("batch")]))
        #expect(fields["usage"] == .object(["input": .string("12")]))
        #expect(fields["metadata.message"] == .string("clash"))
        #expect(!line.contains(UInt8(ascii: "\n")), "one line: newlines inside strings are escaped")
    }

    @Test func writesOneLinePerEventThroughALogger() throws {
        var pipe: [Int32] = [0, 0]
        #expect(Foundation.pipe(&pipe) == 0)
        var handler = JSONLogHandler(label: "test", fileDescriptor: pipe[1])
        handler.logLevel = .debug
        var logger = Logger(label: "test", factory: { _ in handler })
        logger[metadataKey: "worker"] = "w1"
        logger.debug("first", metadata: ["job_id": "a"])
        logger.trace("dropped below the level")
        logger.error("second")
        close(pipe[1])
        let data = FileHandle(fileDescriptor: pipe[0], closeOnDealloc: true).readDataToEndOfFile()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try object(Array(lines[0].utf8))
        let second = try object(Array(lines[1].utf8))
        #expect(first["message"] == .string("first"))
        #expect(first["job_id"] == .string("a"))
        #expect(first["worker"] == .string("w1"))
        #expect(second["level"] == .string("error"))
        #expect(second["job_id"] == nil)
    }
}
