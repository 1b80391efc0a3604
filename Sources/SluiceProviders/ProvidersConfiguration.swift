public import Foundation
public import SluiceSupport
public import Sluice
import SluiceJSON
import Yams

/// Which providers exist, how to reach them, and price overrides.
///
/// The environment alone is enough, with the official SDKs' conventions: `OPENAI_API_KEY`
/// (+ optional `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`) declares the `openai`
/// provider, `ANTHROPIC_API_KEY` (+ optional `ANTHROPIC_BASE_URL`) the `anthropic` provider;
/// the `echo` provider always exists. An optional file (path in `SLUICE_CONFIG`, YAML or JSON)
/// adds or replaces providers:
///
/// ```yaml
/// providers:
///   - name: openai-eu          # jobs use this as their provider
///     kind: openai             # openai | anthropic | echo
///     base_url: https://eu.api.openai.com/v1
///     api_keys: [sk-a, sk-b]   # or api_key_env: OPENAI_EU_KEY; several keys are used round-robin
///     # or a key pool with ids (the names `sluice limits set --key-id` uses; never the secrets):
///     # api_keys: [{id: team-a, key: sk-a}, {id: team-b, env: OPENAI_KEY_B}]
///     models: [gpt-4o-mini]    # optional; default: the price table's models of the kind
///     context_windows: {gpt-4o-mini: 128000}   # optional; default: Resources/models.json
///     headers: {X-Team: ml}    # optional extra request headers
///     timeouts: {connect: 10, first_byte: 120, idle: 60, total: "10m"}  # seconds or Go durations; null disables
/// prices:
///   openai/my-fine-tune: {input: 0.3, output: 1.2, cache_read: 0.15}
/// limits:                     # defaults; `sluice limits set` (sluice.model_limits) overrides them
///   models:
///     openai/gpt-4o: {rpm: 500, tpm: 30000, keys: {team-a: {rpm: 300}, team-b: {rpm: 200}}}  # keys: a key pool
///     anthropic/claude-sonnet-4-5: {rpm: 50, input_tpm: 30000, output_tpm: 8000}
///   lane_reserve: {batch: 0.3, normal: 0.1}   # share of each bucket a lane may not use
/// routes:                     # fallback routes (sluice migrate writes them to sluice.routes;
///   support-chat: [anthropic/claude-sonnet-4-5, openai/gpt-4o, openai/gpt-4o-mini]   # `sluice routes set` wins)
/// ```
/// Other top-level sections are ignored (the file may be shared with other components);
/// unknown keys inside a provider are errors, to catch typos.
public struct ProvidersConfiguration: Sendable {
    /// Network timeouts of one provider's calls.
    public struct Timeouts: Sendable, Hashable {
        /// TCP + TLS connect. Default 10 s.
        public var connect: Duration?
        /// From sending the request to the first response byte (streaming calls). Default 120 s:
        /// a long prompt can take a while to start.
        public var firstByte: Duration?
        /// Longest silence between two chunks of a stream; a stalled stream fails as `timeout`.
        /// Default 60 s.
        public var idle: Duration?
        /// The whole call. Default 600 s.
        public var total: Duration?

        public init(
            connect: Duration? = .seconds(10), firstByte: Duration? = .seconds(120),
            idle: Duration? = .seconds(60), total: Duration? = .seconds(600)
        ) {
            self.connect = connect
            self.firstByte = firstByte
            self.idle = idle
            self.total = total
        }
    }

    /// One configured provider.
    public struct Provider: Sendable {
        /// The name jobs use (`openai`, `anthropic`, `echo`, `openai-eu`, …).
        public var name: String
        /// The wire format.
        public var kind: ProviderKind
        /// OpenAI: includes `/v1` (default `https://api.openai.com/v1`); Anthropic: the host
        /// (default `https://api.anthropic.com`). Ignored for echo.
        public var baseURL: String
        /// API keys, used round-robin per call unless admission chose one (a key pool). Empty:
        /// no auth header (local servers).
        public var apiKeys: [Redacted]
        /// The keys' ids, one per key (`api_keys: [{id, key}]`); keys without one are named by
        /// position (`key-1`, `key-2`, …). Ids name keys in limits and logs; secrets never appear.
        public var apiKeyIDs: [String] = []
        /// Models this provider serves; empty means "the price table's models of this kind".
        public var models: [String]
        /// Extra request headers.
        public var headers: [String: String]
        public var timeouts: Timeouts
        /// OpenAI `OpenAI-Organization` header.
        public var organization: String?
        /// OpenAI `OpenAI-Project` header.
        public var project: String?
        /// Anthropic `anthropic-version` header. Default `2023-06-01`.
        public var anthropicVersion: String
        /// The OpenAI body field that receives the job's `maxOutputTokens` when the request has
        /// neither `max_tokens` nor `max_completion_tokens`. Default `max_completion_tokens`
        /// (what current OpenAI models require); set `max_tokens` for older compatible servers.
        public var maxTokensField: String
        /// Context windows (tokens) of this provider's models, over the bundled table
        /// (`Resources/models.json`); what routes compare after a `context_length` failure.
        public var contextWindows: [String: Int] = [:]

        public init(
            name: String, kind: ProviderKind, baseURL: String? = nil, apiKeys: [Redacted] = [],
            models: [String] = [], headers: [String: String] = [:], timeouts: Timeouts = .init(),
            organization: String? = nil, project: String? = nil, anthropicVersion: String = "2023-06-01",
            maxTokensField: String = "max_completion_tokens"
        ) {
            self.name = name
            self.kind = kind
            self.baseURL = baseURL ?? Self.defaultBaseURL(kind)
            self.apiKeys = apiKeys
            self.models = models
            self.headers = headers
            self.timeouts = timeouts
            self.organization = organization
            self.project = project
            self.anthropicVersion = anthropicVersion
            self.maxTokensField = maxTokensField
        }

        /// The public endpoint of each kind.
        public static func defaultBaseURL(_ kind: ProviderKind) -> String {
            switch kind {
            case .openai: "https://api.openai.com/v1"
            case .anthropic: "https://api.anthropic.com"
            case .echo: ""
            }
        }
    }

    /// All providers, in declaration order (environment first, then the file).
    public var providers: [Provider]
    /// Price overrides keyed `provider/model`, merged over the bundled table.
    public var priceOverrides: [String: PriceTable.Price]
    /// Model limits from the `limits.models` section (defaults under `sluice.model_limits`).
    public var modelLimits: [ModelLimits] = []
    /// `limits.lane_reserve`: lane name → share of each bucket the lane may not use.
    public var laneReserve: [String: Double] = [:]
    /// The `routes:` section (`sluice migrate` writes them to `sluice.routes`), sorted by name.
    public var routes: [Route] = []

    public init(
        providers: [Provider] = [Provider(name: "echo", kind: .echo)],
        priceOverrides: [String: PriceTable.Price] = [:]
    ) {
        self.providers = providers
        self.priceOverrides = priceOverrides
    }

    /// The provider called `name`.
    public func provider(named name: String) -> Provider? {
        providers.first { $0.name == name }
    }

    /// The full configuration: the environment, then the file named by `SLUICE_CONFIG` if set.
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ProvidersError) -> ProvidersConfiguration {
        var configuration = try fromEnvironment(environment)
        if let path = environment["SLUICE_CONFIG"], !path.isEmpty {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ProvidersError(.unreadableConfiguration, "cannot read \(path): \(error.localizedDescription)", field: "SLUICE_CONFIG")
            }
            try configuration.merge(yaml: text, environment: environment)
        }
        return configuration
    }

    /// Providers from the SDK environment variables only (plus `echo`).
    public static func fromEnvironment(_ environment: [String: String]) throws(ProvidersError) -> ProvidersConfiguration {
        var providers: [Provider] = []
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingWhitespace(), !value.isEmpty else { return nil }
            return value
        }
        if value("OPENAI_API_KEY") != nil || value("OPENAI_BASE_URL") != nil {
            let baseURL = try value("OPENAI_BASE_URL").map { url throws(ProvidersError) in try validateURL(url, field: "OPENAI_BASE_URL") }
            providers.append(Provider(
                name: "openai", kind: .openai, baseURL: baseURL,
                apiKeys: value("OPENAI_API_KEY").map { [Redacted($0)] } ?? [],
                organization: value("OPENAI_ORG_ID"), project: value("OPENAI_PROJECT_ID")
            ))
        }
        if value("ANTHROPIC_API_KEY") != nil || value("ANTHROPIC_BASE_URL") != nil {
            let baseURL = try value("ANTHROPIC_BASE_URL").map { url throws(ProvidersError) in try validateURL(url, field: "ANTHROPIC_BASE_URL") }
            providers.append(Provider(
                name: "anthropic", kind: .anthropic, baseURL: baseURL,
                apiKeys: value("ANTHROPIC_API_KEY").map { [Redacted($0)] } ?? []
            ))
        }
        providers.append(Provider(name: "echo", kind: .echo))
        return ProvidersConfiguration(providers: providers)
    }

    /// Parses a configuration document (YAML or JSON) on its own, over the environment's
    /// providers.
    public static func parse(
        yaml: String, environment: [String: String] = [:]
    ) throws(ProvidersError) -> ProvidersConfiguration {
        var configuration = try fromEnvironment(environment)
        try configuration.merge(yaml: yaml, environment: environment)
        return configuration
    }

    /// Adds the providers, prices and raw sections of a configuration document; a provider
    /// with the name of an existing one replaces it.
    public mutating func merge(yaml: String, environment: [String: String]) throws(ProvidersError) {
        let root: JSONValue
        do {
            root = try Self.json(from: yaml)
        } catch let error as ProvidersError {
            throw error
        } catch {
            throw ProvidersError(.unreadableConfiguration, "not valid YAML/JSON: \(Self.syntaxProblem(error))")
        }
        guard case .object(let top) = root else {
            if root.isNull { return }  // empty document
            throw ProvidersError(.invalidConfiguration, "the configuration must be a mapping", field: "$")
        }
        if let section = top["providers"], !section.isNull {
            guard case .array(let items) = section else {
                throw ProvidersError(.invalidConfiguration, "must be a list", field: "providers")
            }
            var seen: Set<String> = []
            for (index, item) in items.enumerated() {
                let provider = try Self.parseProvider(item, field: "providers[\(index)]", environment: environment)
                guard seen.insert(provider.name).inserted else {
                    throw ProvidersError(.invalidConfiguration, "duplicate provider name \"\(provider.name)\"", field: "providers[\(index)].name")
                }
                if let existing = providers.firstIndex(where: { $0.name == provider.name }) {
                    providers[existing] = provider
                } else {
                    providers.append(provider)
                }
            }
        }
        if let section = top["prices"], !section.isNull {
            guard case .object(let entries) = section else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of provider/model to prices", field: "prices")
            }
            for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
                priceOverrides[key] = try Self.parsePrice(entry, key: key)
            }
        }
        if let section = top["limits"], !section.isNull {
            try mergeLimits(section)
        }
        if let section = top["routes"], !section.isNull {
            guard case .object(let entries) = section else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of route names to lists of provider/model", field: "routes")
            }
            var parsed: [Route] = []
            for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
                let field = "routes.\(name)"
                guard case .array(let items) = entry else {
                    throw ProvidersError(.invalidConfiguration, "must be a list of provider/model", field: field)
                }
                var targets: [RouteTarget] = []
                for (index, item) in items.enumerated() {
                    guard let text = item.stringValue, let target = RouteTarget(parsing: text) else {
                        throw ProvidersError(.invalidConfiguration, "must be a provider/model string", field: "\(field)[\(index)]")
                    }
                    targets.append(target)
                }
                let route = Route(name: name, targets: targets, source: .file)
                do {
                    try route.validate()
                } catch {
                    throw ProvidersError(.invalidConfiguration, error.message, field: field)
                }
                parsed.append(route)
            }
            routes = parsed
        }
    }

    // MARK: - Parsing helpers

    static let providerKeys: Set<String> = [
        "name", "kind", "base_url", "api_keys", "api_key", "api_key_env", "models", "headers", "timeouts",
        "organization", "project", "anthropic_version", "max_tokens_field", "context_windows",
    ]

    static func parseProvider(_ value: JSONValue, field: String, environment: [String: String]) throws(ProvidersError) -> Provider {
        guard case .object(let members) = value else {
            throw ProvidersError(.invalidConfiguration, "must be a mapping", field: field)
        }
        for key in members.keys.sorted() where !providerKeys.contains(key) {
            throw ProvidersError(.invalidConfiguration, "unknown field", field: "\(field).\(key)")
        }
        func string(_ key: String) throws(ProvidersError) -> String? {
            guard let member = members[key], !member.isNull else { return nil }
            guard let text = member.stringValue else {
                throw ProvidersError(.invalidConfiguration, "must be a string", field: "\(field).\(key)")
            }
            return text
        }
        func strings(_ key: String) throws(ProvidersError) -> [String] {
            guard let member = members[key], !member.isNull else { return [] }
            guard case .array(let items) = member else {
                throw ProvidersError(.invalidConfiguration, "must be a list of strings", field: "\(field).\(key)")
            }
            var result: [String] = []
            for (index, item) in items.enumerated() {
                guard let text = item.stringValue, !text.isEmpty else {
                    throw ProvidersError(.invalidConfiguration, "must be a non-empty string", field: "\(field).\(key)[\(index)]")
                }
                result.append(text)
            }
            return result
        }

        guard let name = try string("name"), !name.isEmpty else {
            throw ProvidersError(.invalidConfiguration, "is required", field: "\(field).name")
        }
        guard name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) else {
            throw ProvidersError(.invalidConfiguration, "must use only a-z, 0-9, '-', '_' and '.'", field: "\(field).name")
        }
        guard let kindText = try string("kind") else {
            throw ProvidersError(.invalidConfiguration, "is required (openai, anthropic or echo)", field: "\(field).kind")
        }
        guard let kind = ProviderKind(rawValue: kindText) else {
            throw ProvidersError(.invalidConfiguration, "must be one of openai, anthropic, echo", field: "\(field).kind")
        }
        let baseURL = try string("base_url").map { url throws(ProvidersError) in try validateURL(url, field: "\(field).base_url") }

        var keys: [String] = []
        var keyIDs: [String] = []
        if let member = members["api_keys"], !member.isNull {
            guard case .array(let items) = member else {
                throw ProvidersError(.invalidConfiguration, "must be a list of keys or of {id, key|env}", field: "\(field).api_keys")
            }
            for (index, item) in items.enumerated() {
                let path = "\(field).api_keys[\(index)]"
                switch item {
                case .string(let text) where !text.isEmpty:
                    keys.append(text)
                    keyIDs.append("key-\(index + 1)")
                case .object(let entry):
                    for name in entry.keys.sorted() where !["id", "key", "env"].contains(name) {
                        throw ProvidersError(.invalidConfiguration, "unknown field (id, key, env)", field: "\(path).\(name)")
                    }
                    guard let id = entry["id"]?.stringValue, ModelLimits.isKeyID(id) else {
                        throw ProvidersError(.invalidConfiguration, "id is required and must match ^[a-z0-9][a-z0-9_.-]{0,62}$", field: "\(path).id")
                    }
                    if let key = entry["key"]?.stringValue, !key.isEmpty {
                        keys.append(key)
                    } else if let variable = entry["env"]?.stringValue {
                        guard let key = environment[variable]?.trimmingWhitespace(), !key.isEmpty else {
                            throw ProvidersError(.invalidConfiguration, "environment variable \(variable) is not set", field: "\(path).env")
                        }
                        keys.append(key)
                    } else {
                        throw ProvidersError(.invalidConfiguration, "needs key or env", field: path)
                    }
                    guard !keyIDs.contains(id) else {
                        throw ProvidersError(.invalidConfiguration, "duplicate key id \"\(id)\"", field: "\(path).id")
                    }
                    keyIDs.append(id)
                case .string:
                    throw ProvidersError(.invalidConfiguration, "must be a non-empty string", field: path)
                default:
                    throw ProvidersError(.invalidConfiguration, "must be a non-empty string or {id, key|env}", field: path)
                }
            }
        }
        if let single = try string("api_key") {
            keys.append(single)
            keyIDs.append("key-\(keys.count)")
        }
        if let variable = try string("api_key_env") {
            guard let key = environment[variable]?.trimmingWhitespace(), !key.isEmpty else {
                throw ProvidersError(.invalidConfiguration, "environment variable \(variable) is not set", field: "\(field).api_key_env")
            }
            keys.append(key)
            keyIDs.append("key-\(keys.count)")
        }

        var headers: [String: String] = [:]
        if let member = members["headers"], !member.isNull {
            guard case .object(let entries) = member else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of header names to strings", field: "\(field).headers")
            }
            for (header, headerValue) in entries.sorted(by: { $0.key < $1.key }) {
                let lower = header.lowercased()
                if lower == "authorization" || lower == "x-api-key" {
                    throw ProvidersError(.invalidConfiguration, "put credentials in api_keys or api_key_env", field: "\(field).headers.\(header)")
                }
                guard let text = headerValue.stringValue ?? headerValue.intValue.map(String.init) else {
                    throw ProvidersError(.invalidConfiguration, "must be a string", field: "\(field).headers.\(header)")
                }
                headers[header] = text
            }
        }

        var timeouts = Timeouts()
        if let member = members["timeouts"], !member.isNull {
            guard case .object(let entries) = member else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping", field: "\(field).timeouts")
            }
            for (key, entry) in entries {
                let path = "\(field).timeouts.\(key)"
                let duration = try parseDuration(entry, field: path)
                switch key {
                case "connect": timeouts.connect = duration
                case "first_byte": timeouts.firstByte = duration
                case "idle": timeouts.idle = duration
                case "total": timeouts.total = duration
                default: throw ProvidersError(.invalidConfiguration, "unknown timeout (connect, first_byte, idle, total)", field: path)
                }
            }
        }

        var contextWindows: [String: Int] = [:]
        if let member = members["context_windows"], !member.isNull {
            guard case .object(let entries) = member else {
                throw ProvidersError(.invalidConfiguration, "must be a mapping of model names to token counts", field: "\(field).context_windows")
            }
            for (model, value) in entries.sorted(by: { $0.key < $1.key }) {
                guard let tokens = value.intValue, tokens > 0 else {
                    throw ProvidersError(.invalidConfiguration, "must be a positive integer (tokens)", field: "\(field).context_windows.\(model)")
                }
                contextWindows[model] = tokens
            }
        }
        let maxTokensField = try string("max_tokens_field") ?? "max_completion_tokens"
        guard maxTokensField == "max_tokens" || maxTokensField == "max_completion_tokens" else {
            throw ProvidersError(.invalidConfiguration, "must be max_tokens or max_completion_tokens", field: "\(field).max_tokens_field")
        }
        var provider = Provider(
            name: name, kind: kind, baseURL: baseURL, apiKeys: keys.map(Redacted.init), models: try strings("models"),
            headers: headers, timeouts: timeouts, organization: try string("organization"), project: try string("project"),
            anthropicVersion: try string("anthropic_version") ?? "2023-06-01", maxTokensField: maxTokensField
        )
        provider.contextWindows = contextWindows
        provider.apiKeyIDs = keyIDs
        return provider
    }

    static func parseDuration(_ value: JSONValue, field: String) throws(ProvidersError) -> Duration? {
        switch value {
        case .null: return nil
        case .number(let seconds) where seconds > 0 && seconds.isFinite:
            return .nanoseconds(Int64(seconds * 1e9))
        case .string(let text):
            if let duration = GoDuration.parse(text), duration > .zero { return duration }
        default: break
        }
        throw ProvidersError(.invalidConfiguration, "must be a positive number of seconds, a duration like \"1m30s\", or null", field: field)
    }

    static func parsePrice(_ value: JSONValue, key: String) throws(ProvidersError) -> PriceTable.Price {
        let field = "prices.\(key)"
        guard key.contains("/") else {
            throw ProvidersError(.invalidConfiguration, "keys must be provider/model", field: field)
        }
        guard case .object(let members) = value else {
            throw ProvidersError(.invalidConfiguration, "must be a mapping with input and output", field: field)
        }
        func number(_ name: String, required: Bool) throws(ProvidersError) -> Double? {
            guard let member = members[name], !member.isNull else {
                if required { throw ProvidersError(.invalidConfiguration, "is required", field: "\(field).\(name)") }
                return nil
            }
            guard let number = member.doubleValue, number >= 0, number.isFinite else {
                throw ProvidersError(.invalidConfiguration, "must be a non-negative number (USD per million tokens)", field: "\(field).\(name)")
            }
            return number
        }
        for name in members.keys.sorted() where !["input", "output", "cache_read", "cache_write"].contains(name) {
            throw ProvidersError(.invalidConfiguration, "unknown field", field: "\(field).\(name)")
        }
        return PriceTable.Price(
            input: try number("input", required: true)!, output: try number("output", required: true)!,
            cacheRead: try number("cache_read", required: false), cacheWrite: try number("cache_write", required: false)
        )
    }

    static func validateURL(_ text: String, field: String) throws(ProvidersError) -> String {
        let trimmed = text.trimmingWhitespace()
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            throw ProvidersError(.invalidConfiguration, "must be an http(s) URL", field: field)
        }
        // Stored without a trailing slash so paths can be appended with "/…".
        var result = trimmed
        while result.hasSuffix("/") { result.removeLast() }
        return result
    }

    /// Parses YAML (JSON is valid YAML) into a ``JSONValue``, resolving scalar types by the
    /// YAML core schema (quoted scalars stay strings).
    /// A YAML syntax error as position and problem, without the source line Yams quotes after
    /// it: that line may hold an API key (`api_keys: [sk-…`), and error messages never do.
    static func syntaxProblem(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return "\(error)" }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let while_ = context.map { "\($0.text) at \($0.mark), " } ?? ""
            return "\(mark): \(while_)\(problem)"
        case let .reader(problem, offset, _, _):
            return "\(problem)\(offset.map { " at offset \($0)" } ?? "")"
        default:
            return "\(error)"
        }
    }

    static func json(from yaml: String) throws -> JSONValue {
        guard let node = try Yams.compose(yaml: yaml) else { return .null }
        return try json(from: node)
    }

    static func json(from node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int: return node.int.map { .number(Double($0)) } ?? .string(scalar.string)
            case .float: return node.float.map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    throw ProvidersError(.invalidConfiguration, "mapping keys must be strings", field: "$")
                }
                members[name] = try json(from: value)
            }
            return .object(members)
        case .sequence(let sequence):
            return .array(try sequence.map { try json(from: $0) })
        case .alias:
            throw ProvidersError(.invalidConfiguration, "YAML aliases are not supported", field: "$")
        }
    }
}
