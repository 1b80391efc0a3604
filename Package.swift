// swift-tools-version:6.1
import Foundation
import PackageDescription

/// Every .sql file of Migrations/, embedded in the SluiceMigrations module.
let migrationFiles = ((try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/Migrations")) ?? [])
    .filter { $0.hasSuffix(".sql") }.sorted()

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "SluiceWorker", targets: ["SluiceWorker"]),
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "sluice-mock-provider", targets: ["sluice-mock-provider"]),
        .executable(name: "sluice-bench", targets: ["sluice-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // MARK: C system libraries (found by pkg-config) and the shim for variadic calls
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CSluiceShims", dependencies: ["CCurl"]),

        // MARK: Thin safe wrappers (no job vocabulary)
        .target(
            name: "SluiceSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluicePostgres",
            dependencies: [
                "CLibPQ", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceRedis",
            dependencies: [
                "CHiredis", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "CCurl", "CSluiceShims", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Domain
        // The SQL files of Migrations/, embedded in the binary (no Bundle to lose when the binary is copied).
        .target(
            name: "SluiceMigrations",
            path: "Migrations",
            resources: migrationFiles.map { .embedInCode($0) },
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Sluice",
            dependencies: [
                "SluiceMigrations", "SluicePostgres", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceProviders",
            dependencies: [
                "Sluice", "SluiceHTTP", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.embedInCode("Resources/prices.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceWorker",
            dependencies: [
                "Sluice", "SluiceProviders", "SluicePostgres", "SluiceRedis", "SluiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceMockProvider",
            dependencies: [
                "SluiceSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables
        .executableTarget(
            name: "sluice",
            dependencies: [
                "Sluice", "SluiceWorker", "SluiceProviders", "SluicePostgres", "SluiceRedis", "SluiceHTTP", "SluiceSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sluice-mock-provider",
            dependencies: [
                "SluiceMockProvider",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks (scripts/bench runs them in release mode; results in docs/BENCHMARKS.md)
        .executableTarget(
            name: "sluice-bench",
            dependencies: [
                "Sluice", "SluiceWorker", "SluiceProviders", "SluicePostgres", "SluiceRedis", "SluiceHTTP",
                "SluiceMockProvider", "SluiceSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/sluice-bench",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests (real PostgreSQL, Redis and HTTP; see scripts/test)
        // Test support: scopes that own what a test creates (clients, child processes,
        // databases) and tear it down when the test ends. SluiceTestScope depends on nothing.
        .target(name: "SluiceTestScope", path: "Tests/SluiceTestScope", swiftSettings: swiftSettings),
        .target(
            name: "SluicePostgresTestSupport",
            dependencies: ["SluicePostgres", "SluiceTestScope", .product(name: "Logging", package: "swift-log")],
            path: "Tests/SluicePostgresTestSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceTestSupport",
            dependencies: [
                "Sluice", "SluicePostgres", "SluicePostgresTestSupport", "SluiceTestScope",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SluiceTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluicePostgresTests",
            dependencies: ["SluicePostgres", "SluicePostgresTestSupport", "SluiceTestScope"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceRedisTests",
            dependencies: ["SluiceRedis", "SluiceTestScope", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceHTTPTests",
            dependencies: [
                "SluiceHTTP", "SluiceTestScope",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceTests",
            dependencies: ["Sluice", "SluicePostgres", "SluiceTestSupport", "SluiceTestScope"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceProvidersTests",
            dependencies: ["SluiceProviders", "SluiceMockProvider", "SluiceHTTP", "Sluice"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceWorkerTests",
            dependencies: [
                "SluiceWorker", "Sluice", "SluiceProviders", "SluiceMockProvider", "SluicePostgres", "SluiceRedis",
                "SluiceTestSupport", "SluiceTestScope", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
