// Times an incremental fetch + force checkout through pushdeploy's GitSourceFetcher (libgit2) against
// `git fetch && git checkout -f` on the same origin, round after round, and prints the medians and the ratio.
//
// usage: FetchBench ORIGIN WORKDIR [ROUNDS] [COMMITS_PER_ROUND]
// ORIGIN is a non-bare repository on branch main; each round adds COMMITS_PER_ROUND commits to it.
import Foundation
import PushDeploy

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

@discardableResult
func git(_ arguments: [String], in folder: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git"] + arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard process.terminationStatus == 0 else { throw BenchError(description: "git \(arguments) failed: \(text)") }
    return text
}

/// Adds `count` commits to `origin`, each changing a few of its files; returns the last commit's id.
func addCommits(to origin: String, count: Int, round: Int) throws -> String {
    let files = try FileManager.default.contentsOfDirectory(atPath: "\(origin)/src").sorted()
    for index in 0 ..< count {
        for offset in 0 ..< 3 {
            let file = "\(origin)/src/\(files[(round * 31 + index * 7 + offset * 13) % files.count])"
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("round \(round) commit \(index): \(UUID().uuidString)\n".utf8))
            try handle.close()
        }
        try git(["commit", "-q", "-a", "-m", "round \(round) change \(index)"], in: origin)
    }
    return try git(["rev-parse", "HEAD"], in: origin)
}

@MainActor func seconds(_ work: () async throws -> Void) async rethrows -> Double {
    let started = ContinuousClock.now
    try await work()
    return (ContinuousClock.now - started).seconds
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func milliseconds(_ value: Double) -> String { String(format: "%.1f ms", value * 1000) }

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: FetchBench ORIGIN WORKDIR [ROUNDS] [COMMITS_PER_ROUND]")
    exit(2)
}
let origin = arguments[1]
let work = arguments[2]
let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 7 : 7
let perRound = arguments.count > 4 ? Int(arguments[4]) ?? 20 : 20
let libgit2Checkout = "\(work)/pushdeploy"
let cliCheckout = "\(work)/cli"
let fetcher = GitSourceFetcher()
let log = MemoryDeploymentLog()

func pushdeployFetch(_ commit: String?) async throws -> FetchedSource {
    let request = FetchRequest(app: "bench", repository: RepositoryConfig(url: origin), checkoutPath: libgit2Checkout,
                               commit: commit)
    return try await fetcher.fetch(request, log: log)
}

let cliClone = try await seconds { try git(["clone", "-q", origin, cliCheckout], in: work) }
let libgit2Clone = try await seconds { _ = try await pushdeployFetch(nil) }
print("first clone: pushdeploy \(milliseconds(libgit2Clone)), git clone \(milliseconds(cliClone))")

var libgit2Times: [Double] = []
var cliTimes: [Double] = []
for round in 1 ... rounds {
    let commit = try addCommits(to: origin, count: perRound, round: round)
    let measurePushdeploy = {
        let time = try await seconds {
            let source = try await pushdeployFetch(commit)
            guard source.commit == commit else { throw BenchError(description: "pushdeploy checked out \(source.commit)") }
        }
        libgit2Times.append(time)
    }
    let measureCLI = {
        let time = try await seconds {
            try git(["fetch", "-q", "origin"], in: cliCheckout)
            try git(["checkout", "-q", "-f", commit], in: cliCheckout)
        }
        guard try git(["rev-parse", "HEAD"], in: cliCheckout) == commit else { throw BenchError(description: "git is not at \(commit)") }
        cliTimes.append(time)
    }
    // Alternate who goes first, so neither always finds the origin's pages cold.
    if round % 2 == 1 {
        try await measurePushdeploy()
        try await measureCLI()
    } else {
        try await measureCLI()
        try await measurePushdeploy()
    }
    print("round \(round): \(perRound) new commits, pushdeploy \(milliseconds(libgit2Times.last!)), "
        + "git \(milliseconds(cliTimes.last!))")
}

let pushdeployMedian = median(libgit2Times)
let cliMedian = median(cliTimes)
let ratio = pushdeployMedian / cliMedian
print("median incremental fetch + checkout over \(rounds) rounds of \(perRound) commits:")
print("  pushdeploy GitRepository (libgit2): \(milliseconds(pushdeployMedian))")
print("  git fetch && git checkout -f:       \(milliseconds(cliMedian))")
print(String(format: "  ratio: %.2fx (target at most 1.5x) %@", ratio, ratio <= 1.5 ? "OK" : "OVER TARGET"))
if ProcessInfo.processInfo.environment["BENCH_VERBOSE"] != nil {
    print("pushdeploy's log:")
    print(log.text, terminator: "")
}
