import ArgumentParser
import Foundation
import PushDeploy

/// A hidden writer for the crash test: rewrites one deployment record forever, alternating two versions.
struct WriteRecords: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_write-records", shouldDisplay: false)

    @Option var path: String

    func run() throws {
        var deployment = Deployment(id: 1, app: "crash", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        var round = 0
        while true {
            round += 1
            deployment.error = round % 2 == 0 ? String(repeating: "long version ", count: 20_000) : "short version"
            deployment.version = "round-\(round)"
            try AtomicFile.write(JSONEncoder.pushDeploy.encode(deployment), to: path)
        }
    }
}
