import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy logs ID`: a deployment's log.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a deployment's log (the latest if no id is given).")

    @OptionGroup var options: ClientOptions

    @Argument(help: "The deployment id.")
    var id: Int?

    @Flag(name: .shortAndLong, help: "Keep printing until the deployment ends.")
    var follow = false

    func run() async throws {
        try await runReporting {
            let client = try options.client()
            var target = id
            if target == nil {
                target = try await client.get("\(options.prefix)deployments?limit=1", as: [Deployment].self).first?.id
            }
            guard let target else { throw CLIError("there are no deployments yet") }
            if follow {
                let deployment = try await client.get("\(options.prefix)deployments/\(target)", as: Deployment.self)
                let finished = try await Follow.untilFinished(client: client, app: deployment.app, id: target, printLog: true)
                if finished.status != .succeeded { throw ExitCode.failure }
                return
            }
            let (_, data) = try await client.send("GET", "\(options.prefix)deployments/\(target)/log")
            FileHandle.standardOutput.write(data)
        }
    }
}
