import SluiceSupport
import Testing

@Suite("Log redaction")
struct LogRedactionTests {
    @Test(arguments: [
        ("provider said: invalid key sk-proj-abcdEFGH1234ijkl5678", "provider said: invalid key sk-<redacted>"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "Authorization: Bearer <redacted>"),
        ("contact jane.doe+llm@example.co.uk now", "contact <email>@example.co.uk now"),
        ("call +44 20 7946 0958 today", "call <phone> today"),
        ("call +1 (415) 555-0100.", "call <phone>."),
        ("US (415) 555-0100 or 415-555-0100 or 415.555.0100", "US <phone> or <phone> or <phone>"),
        ("UK 020 7946 0958, DE 030-1234-5678", "UK <phone>, DE <phone>"),
        ("+4915112345678", "<phone>"),
    ])
    func masks(_ input: String, _ expected: String) {
        #expect(LogRedaction.redact(input) == expected)
    }

    @Test(arguments: [
        "job 0193a6f2-7c1e-7a00-8000-1234567890ab attempt 3 of 5",
        "at 2026-12-05 05:39:08.123Z took 1500 ms",
        "HTTP 429: retry after 12 s; version 1.2.3; 192.168.100.1",
        "tokens 1234567890 in 2026-12-05T05:39:08Z",
        "user@localhost is not an address with a domain dot",
        "a short sk-abc is not a key",
    ])
    func leavesOrdinaryTextAlone(_ input: String) {
        #expect(LogRedaction.redact(input) == input)
    }

    @Test func masksEverythingInOneMessage() {
        let text = "401 for sk-ant-api03-AAAABBBBCCCC (owner bob@corp.example, +33 1 23 45 67 89)"
        let redacted = LogRedaction.redact(text)
        #expect(!redacted.contains("AAAABBBB"))
        #expect(!redacted.contains("bob@"))
        #expect(!redacted.contains("45 67"))
        #expect(redacted == "401 for sk-<redacted> (owner <email>@corp.example, <phone>)")
    }
}
