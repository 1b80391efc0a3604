// swift-tools-version:6.1
import Foundation
import PackageDescription

// MARK: - What is in the package

/// The mock provider, the benchmarks and the tests that run against them (and their
/// dependencies: Hummingbird, SwiftNIO, HTTP types) are development parts. They are in the
/// package when it is built on its own (a checkout of this repository) and left out when it is
/// built as another package's dependency (it then lives under `…/checkouts/`), so a service that
/// depends on the `Sluice` library never resolves or builds them. `SLUICE_DEVELOPMENT=1` or `=0`
/// overrides the guess (scripts/test, scripts/bench and scripts/demo set it to 1).
let development: Bool = {
    if let value = ProcessInfo.processInfo.environment["SLUICE_DEVELOPMENT"] { return value != "0" }
    return !Context.packageDirectory.contains("/checkouts/")
}()

/// Every .sql file of Migrations/, compiled into the SluiceMigrations module. (SwiftPM caches
/// the evaluated manifest by this file's text, so a build can miss a newly added migration file
/// — "type 'PackageResources' has no member …" — until this file changes or the build runs with
/// `--manifest-cache none`; seen when 0008_fair_queueing.sql was added. So a change that adds a
/// migration file also changes this line: the newest is 0014_lease_renewed_until.sql.)
let migrationFiles = ((try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/Migrations")) ?? [])
    .filter { $0.hasSuffix(".sql") }.sorted()

/// Every target: existential `any`, imports internal unless declared `public import`, and a
/// member visible only in files that import its module, so the layering (C modules → wrappers →
/// domain → providers/worker → CLI) is checked by the compiler.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let log = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "SluiceWorker", targets: ["SluiceWorker"]),
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Operations: metrics through swift-metrics (the worker library), exported by
        // swift-prometheus on /metrics, /healthz and /readyz served by Hummingbird (the CLI only).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Traces: the worker makes spans through swift-distributed-tracing (no-ops unless a
        // tracer is bootstrapped); the CLI exports them over OTLP/HTTP with swift-otel when an
        // endpoint is configured. Only the OTLPHTTP trait: the gRPC exporter would add grpc-swift.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.3.0"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // MARK: C system libraries (found by pkg-config) and the shim for variadic calls
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CSluiceShims", dependencies: ["CCurl"]),

        // MARK: Thin safe wrappers (no job vocabulary)
        .target(name: "SluiceSupport", dependencies: ["SluiceJSON", log], swiftSettings: swiftSettings),
        .target(name: "SluicePostgres", dependencies: ["CLibPQ", "SluiceSupport", log, lifecycle], swiftSettings: swiftSettings),
        .target(name: "SluiceRedis", dependencies: ["CHiredis", "SluiceSupport", log, lifecycle], swiftSettings: swiftSettings),
        .target(name: "SluiceHTTP", dependencies: ["CCurl", "CSluiceShims", "SluiceSupport", log, lifecycle], swiftSettings: swiftSettings),

        // MARK: JSON (parser, writer, syntax checks and value type; standard library only)
        .target(name: "SluiceJSON", swiftSettings: swiftSettings),

        // MARK: Domain
        // The SQL files of Migrations/, compiled in (no resource bundle to lose when the binary is copied).
        .target(
            name: "SluiceMigrations",
            path: "Migrations",
            resources: migrationFiles.map { .embedInCode($0) },
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Sluice",
            dependencies: ["SluiceJSON", "SluiceMigrations", "SluicePostgres", "SluiceSupport", log, lifecycle],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceProviders",
            dependencies: ["Sluice", "SluiceHTTP", "SluiceJSON", "SluiceSupport", log, .product(name: "Yams", package: "Yams")],
            resources: [.embedInCode("Resources/prices.json"), .embedInCode("Resources/models.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceWorker",
            dependencies: ["Sluice", "SluicePostgres", "SluiceRedis", "SluiceHTTP", "SluiceJSON", "SluiceSupport", crypto, log, lifecycle, metrics,
                           .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: swiftSettings
        ),

        // MARK: The CLI
        .executableTarget(
            name: "sluice",
            dependencies: [
                "Sluice", "SluiceWorker", "SluiceProviders", "SluicePostgres", "SluiceRedis", "SluiceHTTP", "SluiceJSON", "SluiceSupport",
                argumentParser, crypto, log, lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                metrics, prometheus, hummingbird,
                .product(name: "OTel", package: "swift-otel"), .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests that need nothing but the library (real PostgreSQL and Redis; see scripts/test)
        // Test support: scopes that own what a test creates (clients, child processes,
        // databases) and tear it down when the test ends. SluiceTestScope depends on nothing.
        .target(name: "SluiceTestScope", path: "Tests/SluiceTestScope", swiftSettings: swiftSettings),
        .target(
            name: "SluicePostgresTestSupport",
            dependencies: ["SluicePostgres", "SluiceTestScope", log],
            path: "Tests/SluicePostgresTestSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceTestSupport",
            dependencies: ["Sluice", "SluiceJSON", "SluicePostgres", "SluicePostgresTestSupport", "SluiceTestScope", log],
            path: "Tests/SluiceTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SluiceJSONTests", dependencies: ["SluiceJSON"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceSupportTests", dependencies: ["SluiceSupport", "SluiceJSON", log], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluicePostgresTests",
            dependencies: ["SluicePostgres", "SluicePostgresTestSupport", "SluiceSupport", "SluiceTestScope", log],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceRedisTests",
            dependencies: ["SluiceRedis", "SluiceTestScope", log, lifecycle],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceTests",
            dependencies: ["Sluice", "SluicePostgres", "SluiceTestSupport", "SluiceTestScope", log],
            swiftSettings: swiftSettings
        ),
    ]
)

// MARK: - Development parts: the mock provider, the benchmarks and the tests that use them

if development {
    package.dependencies += [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ]
    package.products += [
        .executable(name: "sluice-mock-provider", targets: ["sluice-mock-provider"]),
        .executable(name: "sluice-bench", targets: ["sluice-bench"]),
        .executable(name: "sluice-demo", targets: ["sluice-demo"]),
    ]
    package.targets += [
        .target(
            name: "SluiceMockProvider",
            dependencies: [
                "SluiceJSON", "SluiceSupport", hummingbird, log, lifecycle,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sluice-mock-provider",
            dependencies: ["SluiceMockProvider", "SluiceSupport", argumentParser, hummingbird, log],
            swiftSettings: swiftSettings
        ),
        // The benchmarks (scripts/bench runs them in release mode; results in docs/BENCHMARKS.md).
        .executableTarget(
            name: "sluice-bench",
            dependencies: [
                "CLibPQ", "Sluice", "SluiceJSON", "SluiceProviders", "SluicePostgres", "SluiceRedis", "SluiceHTTP", "SluiceSupport",
                "SluiceWorker", "SluiceMockProvider", argumentParser, log, lifecycle, hummingbird,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Benchmarks/sluice-bench",
            swiftSettings: swiftSettings
        ),
        // The embedded demo (scripts/demo): mock provider and webhook receiver in-process, real workers.
        .executableTarget(
            name: "sluice-demo",
            dependencies: [
                "Sluice", "SluiceJSON", "SluicePostgres", "SluiceHTTP", "SluiceSupport", "SluiceMockProvider",
                argumentParser, crypto, hummingbird, log, lifecycle,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceHTTPTests",
            dependencies: [
                "SluiceHTTP", "SluiceTestScope", hummingbird, log, lifecycle,
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceProvidersTests",
            dependencies: ["SluiceProviders", "SluiceMockProvider", "SluiceHTTP", "SluiceJSON", "SluiceSupport", "Sluice", log],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceWorkerTests",
            dependencies: [
                "SluiceWorker", "Sluice", "SluiceProviders", "SluiceMockProvider", "SluicePostgres", "SluiceHTTP",
                "SluiceRedis", "SluiceSupport", "SluiceTestSupport", "SluiceTestScope", crypto, hummingbird, log, lifecycle,
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
}
