import Foundation
import Sluice
import Testing
@testable import SluiceProviders
import SluiceSupport
import SluiceJSON

@Suite("Providers configuration")
struct ConfigurationTests {
    @Test func sdkEnvironmentVariablesAlone() throws {
        let configuration = try ProvidersConfiguration.fromEnvironment([
            "OPENAI_API_KEY": "sk-test-openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/",
            "ANTHROPIC_API_KEY": "sk-ant-test",
        ])
        #expect(configuration.providers.map(\.name) == ["openai", "anthropic", "echo"])
        let openAI = try #require(configuration.provider(named: "openai"))
        #expect(openAI.kind == .openai)
        #expect(openAI.baseURL == "http://127.0.0.1:9/v1")
        #expect(openAI.apiKeys.map(\.revealed) == ["sk-test-openai"])
        let anthropic = try #require(configuration.provider(named: "anthropic"))
        #expect(anthropic.baseURL == "https://api.anthropic.com")
        #expect(anthropic.apiKeys.map(\.revealed) == ["sk-ant-test"])
        // Keys never print.
        #expect(!"\(openAI.apiKeys)".contains("sk-test-openai"))
    }

    @Test func emptyEnvironmentHasOnlyEcho() throws {
        let configuration = try ProvidersConfiguration.fromEnvironment([:])
        #expect(configuration.providers.map(\.name) == ["echo"])
    }

    @Test func badBaseURLInEnvironment() {
        #expect {
            _ = try ProvidersConfiguration.fromEnvironment(["OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "ftp://x"])
        } throws: { error in
            (error as? ProvidersError)?.description == "ProvidersError.invalid_configuration: OPENAI_BASE_URL: must be an http(s) URL"
        }
    }

    @Test func yamlFileDeclaresProviders() throws {
        let yaml = """
        providers:
          - name: openai-eu
            kind: openai
            base_url: https://eu.example.com/v1
            api_keys: [sk-one-aaaaaaaa, sk-two-bbbbbbbb]
            models: [gpt-4o-mini, gpt-4.1]
            headers: {X-Team: ml}
            timeouts: {connect: 5, first_byte: "30s", idle: 1m, total: null}
            max_tokens_field: max_tokens
          - name: claude
            kind: anthropic
            api_key_env: MY_CLAUDE_KEY
          - name: echo
            kind: echo
            models: [echo, echo-2]
        prices:
          openai/my-tune: {input: 0.3, output: 1.2, cache_read: 0.15}
        queue: {ignored: true}
        """
        let configuration = try ProvidersConfiguration.parse(yaml: yaml, environment: ["MY_CLAUDE_KEY": "sk-ant-claude", "OPENAI_API_KEY": "sk-env"])
        #expect(configuration.providers.map(\.name) == ["openai", "echo", "openai-eu", "claude"])
        let eu = try #require(configuration.provider(named: "openai-eu"))
        #expect(eu.apiKeys.map(\.revealed) == ["sk-one-aaaaaaaa", "sk-two-bbbbbbbb"])
        #expect(eu.models == ["gpt-4o-mini", "gpt-4.1"])
        #expect(eu.headers == ["X-Team": "ml"])
        #expect(eu.timeouts.connect == .seconds(5))
        #expect(eu.timeouts.firstByte == .seconds(30))
        #expect(eu.timeouts.idle == .seconds(60))
        #expect(eu.timeouts.total == nil)
        #expect(eu.maxTokensField == "max_tokens")
        let claude = try #require(configuration.provider(named: "claude"))
        #expect(claude.kind == .anthropic)
        #expect(claude.apiKeys.map(\.revealed) == ["sk-ant-claude"])
        #expect(configuration.provider(named: "echo")?.models == ["echo", "echo-2"])
        #expect(configuration.priceOverrides["openai/my-tune"] == PriceTable.Price(input: 0.3, output: 1.2, cacheRead: 0.15))
    }

    /// The routes: section becomes routes (written to sluice.routes by sluice migrate); a bad
    /// entry fails naming it. Context windows per provider override the bundled table.
    @Test func routesAndContextWindowsAreParsed() throws {
        let configuration = try ProvidersConfiguration.parse(yaml: """
            providers:
              - {name: openai, kind: openai, context_windows: {gpt-4o: 64000}}
            routes:
              support-chat: [anthropic/claude-sonnet-4-5, openai/gpt-4o, openai/gpt-4o-mini]
              cheap: [openai/gpt-4o-mini]
            """)
        #expect(configuration.routes.map(\.name) == ["cheap", "support-chat"])
        #expect(configuration.routes[1].targets.map(\.description) == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o", "openai/gpt-4o-mini"])
        #expect(configuration.routes.allSatisfy { $0.source == .file })
        let openai = try #require(configuration.provider(named: "openai"))
        #expect(openai.contextWindows == ["gpt-4o": 64000])
        #expect(ProviderCatalog.contextWindow(provider: "openai", kind: "openai", model: "gpt-4o", overrides: openai.contextWindows) == 64000)
        #expect(ProviderCatalog.contextWindow(provider: "openai", kind: "openai", model: "gpt-4o-2024-08-06") == 128000)
        #expect(ProviderCatalog.contextWindow(provider: "claude-eu", kind: "anthropic", model: "claude-sonnet-4-5") == 200000)
        #expect(ProviderCatalog.contextWindow(provider: "openai", kind: "openai", model: "my-tune") == nil)

        for (yaml, field) in [("routes: [a]", "routes"), ("routes:\n  r: openai/gpt-4o", "routes.r"),
                              ("routes:\n  r: [gpt-4o]", "routes.r[0]"), ("routes:\n  r: []", "routes.r"),
                              ("routes:\n  Bad: [openai/gpt-4o]", "routes.Bad"),
                              ("routes:\n  r: [openai/gpt-4o, openai/gpt-4o]", "routes.r")] {
            let error = #expect(throws: ProvidersError.self, "\(yaml)") { try ProvidersConfiguration.parse(yaml: yaml) }
            #expect(error?.field == field, "\(yaml)")
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func limitsSectionIsParsed() throws {
        let configuration = try ProvidersConfiguration.parse(yaml: """
            limits:
              models:
                openai/gpt-4o: {rpm: 500, tpm: 30000}
                anthropic/claude-sonnet-4-5: {rpm: 50, input_tpm: 30000, output_tpm: 8000, paused: true}
              lane_reserve: {batch: 0.5, normal: 0.2}
            """)
        let byName = Dictionary(uniqueKeysWithValues: configuration.modelLimits.map { ("\($0.provider)/\($0.model)", $0) })
        #expect(byName["openai/gpt-4o"] == ModelLimits(provider: "openai", model: "gpt-4o", rpm: 500, tpm: 30000))
        #expect(byName["anthropic/claude-sonnet-4-5"] == ModelLimits(
            provider: "anthropic", model: "claude-sonnet-4-5", rpm: 50, inputTPM: 30000, outputTPM: 8000, paused: true))
        #expect(configuration.laneReserve == ["batch": 0.5, "normal": 0.2])
    }

    @Test func keyPoolLimitsAreParsedAndNamedKeysChecked() throws {
        let configuration = try ProvidersConfiguration.parse(yaml: """
            providers:
              - {name: openai, kind: openai, api_keys: [{id: team-a, key: sk-aaaaaaaaaaaaaaaa}, sk-bbbbbbbbbbbbbbbb]}
            limits:
              models:
                openai/gpt-4o:
                  rpm: 500
                  keys:
                    team-a: {rpm: 300, tpm: 20000}
                    key-2: {output_tpm: 8000}
            """)
        let limits = configuration.modelLimits.sorted { ($0.keyID ?? "") < ($1.keyID ?? "") }
        #expect(limits == [
            ModelLimits(provider: "openai", model: "gpt-4o", rpm: 500),
            ModelLimits(provider: "openai", model: "gpt-4o", outputTPM: 8000, keyID: "key-2"),
            ModelLimits(provider: "openai", model: "gpt-4o", rpm: 300, tpm: 20000, keyID: "team-a"),
        ])
        // The database's rows win per provider, model and key; the file's other keys stay.
        var snapshot = LimitsSnapshot(models: [ModelLimits(provider: "openai", model: "gpt-4o", rpm: 50, keyID: "team-a")])
        snapshot.addFileLimits(configuration.modelLimits)
        let pool = try #require(snapshot.indexed().pools["openai/gpt-4o"])
        #expect(pool.map(\.keyID) == ["key-2", "team-a"])
        #expect(pool.first { $0.keyID == "team-a" }?.rpm == 50)
        #expect(snapshot.indexed().models["openai/gpt-4o"]?.rpm == 500)
    }

    @Test(arguments: [
        ("keys: {team-c: {rpm: 5}}", "limits.models.openai/gpt-4o.keys.team-c", "provider openai has no API key with this id (its keys: team-a)"),
        ("keys: {Team-A: {rpm: 5}}", "limits.models.openai/gpt-4o.keys.Team-A", "key ids must match"),
        ("keys: {team-a: {rpm: 0}}", "limits.models.openai/gpt-4o.keys.team-a.rpm", "must be a positive integer"),
        ("keys: {team-a: {paused: true}}", "limits.models.openai/gpt-4o.keys.team-a.paused", "unknown field"),
        ("keys: {team-a: {}}", "limits.models.openai/gpt-4o.keys.team-a", "needs at least one of"),
        ("keys: [team-a]", "limits.models.openai/gpt-4o.keys", "must be a mapping"),
    ])
    func badKeyPoolLimitsAreRefusedNamingTheField(entry: String, field: String, message: String) throws {
        let error = #expect(throws: ProvidersError.self) {
            try ProvidersConfiguration.parse(yaml: """
                providers:
                  - {name: openai, kind: openai, api_keys: [{id: team-a, key: sk-aaaaaaaaaaaaaaaa}]}
                limits:
                  models:
                    openai/gpt-4o: {\(entry)}
                """)
        }
        #expect(error?.field == field)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "nil")")
        #expect(error.map { "\($0)" }?.contains("sk-aaaa") == false)
    }

    @Test(arguments: [
        ("limits:\n  models:\n    gpt-4o: {rpm: 5}", "limits.models.gpt-4o"),
        ("limits:\n  models:\n    openai/gpt-4o: {rpm: -5}", "limits.models.openai/gpt-4o.rpm"),
        ("limits:\n  models:\n    openai/gpt-4o: {rpn: 5}", "limits.models.openai/gpt-4o.rpn"),
        ("limits:\n  lane_reserve: {batch: 1.5}", "limits.lane_reserve.batch"),
        ("limits:\n  lane_reserve: {bulk: 0.5}", "limits.lane_reserve.bulk"),
        ("limits:\n  openai: {rpm: 500}", "limits.openai"),
    ])
    func badLimitsAreRefusedNamingTheField(yaml: String, field: String) throws {
        let error = #expect(throws: ProvidersError.self) {
            try ProvidersConfiguration.parse(yaml: yaml)
        }
        #expect(error?.field == field)
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func jsonIsAcceptedToo() throws {
        let configuration = try ProvidersConfiguration.parse(yaml: #"{"providers":[{"name":"local","kind":"openai","base_url":"http://127.0.0.1:8000/v1","api_keys":["k"]}]}"#)
        #expect(configuration.provider(named: "local")?.baseURL == "http://127.0.0.1:8000/v1")
    }

    @Test func loadReadsTheFileNamedBySLUICE_CONFIG() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-providers-\(UUID().uuidString).yaml").path
        try "providers:\n  - {name: file-echo, kind: echo}\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try ProvidersConfiguration.load(environment: ["SLUICE_CONFIG": path])
        #expect(configuration.provider(named: "file-echo")?.kind == .echo)
        #expect {
            _ = try ProvidersConfiguration.load(environment: ["SLUICE_CONFIG": path + ".missing"])
        } throws: { ($0 as? ProvidersError)?.code == .unreadableConfiguration }
    }

    @Test(arguments: [
        ("providers: [{name: a, kind: openai}, {name: b, kind: openai, base_url: 'not a url'}]", "providers[1].base_url: must be an http(s) URL"),
        ("providers: [{name: a, kind: mistral}]", "providers[0].kind: must be one of openai, anthropic, echo"),
        ("providers: [{kind: openai}]", "providers[0].name: is required"),
        ("providers: [{name: a}]", "providers[0].kind: is required (openai, anthropic or echo)"),
        ("providers: [{name: a, kind: echo}, {name: a, kind: echo}]", "providers[1].name: duplicate provider name \"a\""),
        ("providers: [{name: a, kind: openai, api_key_env: NOPE_NOT_SET}]", "providers[0].api_key_env: environment variable NOPE_NOT_SET is not set"),
        ("providers: [{name: a, kind: openai, bse_url: 'http://x'}]", "providers[0].bse_url: unknown field"),
        ("providers: [{name: a, kind: openai, timeouts: {idle: -3}}]", "providers[0].timeouts.idle: must be a positive number of seconds, a duration like \"1m30s\", or null"),
        ("providers: [{name: a, kind: openai, headers: {Authorization: x}}]", "providers[0].headers.Authorization: put credentials in api_keys or api_key_env"),
        ("providers: [{name: a, kind: openai, api_keys: ['']}]", "providers[0].api_keys[0]: must be a non-empty string"),
        ("providers: {name: a}", "providers: must be a list"),
        ("prices: {gpt-4o: {input: 1, output: 2}}", "prices.gpt-4o: keys must be provider/model"),
        ("prices: {openai/x: {input: 1}}", "prices.openai/x.output: is required"),
        ("prices: {openai/x: {input: -1, output: 1}}", "prices.openai/x.input: must be a non-negative number (USD per million tokens)"),
    ])
    func badConfigurationNamesTheField(_ yaml: String, _ expected: String) {
        #expect {
            _ = try ProvidersConfiguration.parse(yaml: yaml)
        } throws: { error in
            // Every case is a bad value: `ProvidersError.invalid_configuration: <field>: <message>`.
            let description = (error as? ProvidersError)?.description
            let full = "ProvidersError.invalid_configuration: " + expected
            if description != full { Issue.record("got \(description ?? "\(error)")") }
            return description == full
        }
    }

    @Test func invalidYAMLSyntax() {
        #expect {
            _ = try ProvidersConfiguration.parse(yaml: "providers: [unclosed")
        } throws: { ($0 as? ProvidersError)?.code == .unreadableConfiguration }
    }

    @Test func keysAreRoundRobin() {
        let ring = KeyRing([.init("a"), .init("b"), .init("c")])
        let picked = (0..<6).map { _ in ring.next()?.revealed }
        #expect(picked == ["a", "b", "c", "a", "b", "c"])
        #expect(KeyRing([]).next() == nil)
    }
}
