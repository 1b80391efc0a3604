import Foundation
@testable import Sluice
import Testing

@Suite("Outcome timestamps")
struct JSONDatesTests {
    @Test func formatsUTCWithMicrosecondsAndRoundTrips() throws {
        #expect(JSONDates.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(JSONDates.format(Date(timeIntervalSince1970: 1_795_446_245.123456)) == "2026-11-23T15:04:05.123456Z")
        #expect(JSONDates.format(Date(timeIntervalSince1970: 253_402_300_800.5)) == "10000-01-01T00:00:00.500000Z")
        #expect(String(decoding: JSONDates.quoted(Date(timeIntervalSince1970: 0.000_001)), as: UTF8.self) == "\"1970-01-01T00:00:00.000001Z\"")
        // Random instants survive a trip through ISO8601DateFormatter to the microsecond.
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000, using: &generator))
            let text = JSONDates.format(date)
            let parsed = try #require(parser.date(from: text))
            #expect(abs(parsed.timeIntervalSince(date)) < 0.001)
        }
    }
}

extension JSONDates {
    /// The text form alone (what ``quoted(_:)`` writes between its quotes).
    static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
