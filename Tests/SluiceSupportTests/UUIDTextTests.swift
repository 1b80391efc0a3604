import Foundation
import SluiceSupport
import Testing

@Suite("UUID text form")
struct UUIDTextTests {
    @Test func aKnownUUIDIsWrittenInLowerCase8_4_4_4_12() throws {
        let uuid = try #require(UUID(uuidString: "0189ABCD-EF01-7234-8567-89ABCDEF0123"))
        #expect(uuid.lowercasedText == "0189abcd-ef01-7234-8567-89abcdef0123")
        var buffer = Array("id=".utf8)
        uuid.appendLowercasedText(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "id=0189abcd-ef01-7234-8567-89abcdef0123")
    }

    @Test func matchesFoundationForRandomUUIDs() {
        for _ in 0..<1_000 {
            let uuid = UUID()
            #expect(uuid.lowercasedText == uuid.uuidString.lowercased())
            #expect(UUID(uuidString: uuid.lowercasedText) == uuid)
        }
    }
}
