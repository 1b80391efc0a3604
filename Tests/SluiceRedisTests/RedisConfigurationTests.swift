import Testing

@testable import SluiceRedis
import SluiceSupport

@Suite("RedisConfiguration URL parsing")
struct RedisConfigurationTests {
    @Test func minimalURLGetsDefaults() throws {
        let c = try RedisConfiguration(url: "redis://cache.internal")
        #expect(c.host == "cache.internal")
        #expect(c.port == 6379)
        #expect(c.database == 0)
        #expect(c.password == nil)
        #expect(c.username == nil)
        #expect(c.connectTimeout == .seconds(2))
        #expect(c.commandTimeout == .seconds(2))
    }

    @Test func fullURL() throws {
        let c = try RedisConfiguration(url: "redis://alice:p%40ss:word@10.0.0.5:6380/3")
        #expect(c.host == "10.0.0.5")
        #expect(c.port == 6380)
        #expect(c.database == 3)
        #expect(c.username == "alice")
        #expect(c.password?.revealed == "p@ss:word")
    }

    @Test func passwordOnlyForms() throws {
        let a = try RedisConfiguration(url: "redis://:hunter2@localhost:7000")
        #expect(a.username == nil)
        #expect(a.password?.revealed == "hunter2")
        #expect(a.port == 7000)
        let b = try RedisConfiguration(url: "redis://hunter2@localhost")
        #expect(b.password?.revealed == "hunter2")
        let c = try RedisConfiguration(url: "redis://pa@ss@localhost/1")  // unescaped '@' in the password
        #expect(c.password?.revealed == "pa@ss")
        #expect(c.host == "localhost")
        #expect(c.database == 1)
    }

    @Test func ipv6AndTrailingSlash() throws {
        let c = try RedisConfiguration(url: "redis://[::1]:6390/")
        #expect(c.host == "::1")
        #expect(c.port == 6390)
        #expect(c.database == 0)
    }

    @Test(arguments: [
        "", "http://localhost", "redis:/localhost", "redis://", "redis://:pw@", "redis://host:0", "redis://host:65536",
        "redis://host:abc", "redis://host/-1", "redis://host/x", "redis://host?db=1", "redis://[::1", "redis://host:6379/1/2",
        "redis://a%zz:pw@host",
    ])
    func badURLsThrowInvalidURL(url: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            (error as? RedisError)?.code == .invalidURL
        }
    }

    @Test func errorsAndDescriptionNeverShowThePassword() throws {
        do {
            _ = try RedisConfiguration(url: "redis://:topsecret-99@host:notaport")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidURL)
            #expect(!error.description.contains("topsecret-99"))
            #expect(!error.message.contains("topsecret-99"))
        }
        let c = try RedisConfiguration(url: "redis://bob:topsecret-99@host:6400/2")
        #expect(!c.description.contains("topsecret-99"))
        #expect(!"\(c)".contains("topsecret-99"))
        #expect(!String(reflecting: c).contains("topsecret-99"))
        #expect(c.description == "redis://bob:<redacted>@host:6400/2")
    }
}
