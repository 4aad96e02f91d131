import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy rollback`: back to the previous successful release, or to one named.
struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Roll back to the previous good release (or --to ID|VERSION).")

    @OptionGroup var options: ClientOptions

    @Option(help: "A deployment id or a release version to go back to.")
    var to: String?

    @Flag(help: "List the releases one can roll back to, and do nothing.")
    var list = false

    @Flag(help: "Follow the log until the rollback ends; exit non-zero unless it succeeded.")
    var wait = false

    func run() async throws {
        try await runReporting {
            let client = try options.client()
            if list {
                // The stored releases (the server knows what is pruned), with the deployment that last made each live.
                let status = try await client.get("\(options.prefix)status", as: AppStatus.self)
                let deployments = try await client.get("\(options.prefix)deployments?limit=1000", as: [Deployment].self)
                let live = status.live?.version
                var seen: Set<String> = []
                let stored = Set(status.rollbackCandidates + [live].compactMap { $0 })
                let candidates = deployments.filter {
                    $0.status == .succeeded && $0.version.map(stored.contains) == true && seen.insert($0.version!).inserted
                }
                if options.json {
                    print(String(decoding: try JSONEncoder.pushDeploy.encode(candidates), as: UTF8.self))
                    return
                }
                Table.print(["", "DEPLOYMENT", "VERSION", "COMMIT", "FINISHED"], candidates.map {
                    [$0.version == live ? "live" : "", String($0.id), $0.version ?? "", String(($0.commit ?? "").prefix(12)),
                     Table.date($0.finishedAt)]
                })
                return
            }
            var body: [String: String] = [:]
            body["to"] = to
            body["by"] = ProcessInfo.processInfo.environment["USER"].map { "\($0) (cli)" } ?? "cli"
            let (_, data) = try await client.send("POST", "\(options.prefix)rollback", json: body)
            try await Accepted.report(data, client: client, options: options, wait: wait, verb: "rollback")
        }
    }
}
