import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy deploy`: queue a deployment of the branch head or an exact commit.
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue a deployment (the branch head, or --ref / --commit).")

    @OptionGroup var options: ClientOptions

    @Option(help: "A branch to deploy instead of the configured one.")
    var ref: String?

    @Option(help: "An exact commit to deploy.")
    var commit: String?

    @Flag(help: "Follow the log until the deployment ends; exit non-zero unless it succeeded.")
    var wait = false

    func run() async throws {
        try await runReporting {
            let client = try options.client()
            var body: [String: String] = [:]
            body["ref"] = ref
            body["commit"] = commit
            body["by"] = ProcessInfo.processInfo.environment["USER"].map { "\($0) (cli)" } ?? "cli"
            let (_, data) = try await client.send("POST", "\(options.prefix)deploy", json: body)
            try await Accepted.report(data, client: client, options: options, wait: wait, verb: "deployment")
        }
    }
}

/// Prints the answer to a deploy or rollback request and, with `--wait`, follows it to the end.
enum Accepted {
    struct Body: Decodable {
        var deployment: Int
        var app: String
        var statusUrl: String
        var duplicate: Bool?
    }

    static func report(_ data: Data, client: PushDeployClient, options: ClientOptions, wait: Bool, verb: String) async throws {
        let body = try JSONDecoder.pushDeploy.decode(Body.self, from: data)
        if options.json, !wait {
            print(String(decoding: data, as: UTF8.self), terminator: "")
        } else if !options.json {
            print("\(verb) \(body.deployment) of \(body.app) \(body.duplicate == true ? "already recorded" : "queued")")
        }
        guard wait else { return }
        let deployment = try await Follow.untilFinished(client: client, app: body.app, id: body.deployment, printLog: !options.json)
        if options.json {
            print(String(decoding: try JSONEncoder.pushDeploy.encode(deployment), as: UTF8.self))
        } else {
            print("\(verb) \(deployment.id): \(deployment.status.rawValue)\(deployment.error.map { ": \($0)" } ?? "")")
        }
        guard deployment.status == .succeeded else {
            throw CLIError("\(verb) \(deployment.id) \(deployment.status.rawValue): \(deployment.error ?? "see pushdeploy logs \(deployment.id)")")
        }
    }
}

/// Follows a deployment's log until it finishes, over Server-Sent Events: each line once, as it comes.
enum Follow {
    static func untilFinished(client: PushDeployClient, app: String, id: Int, printLog: Bool) async throws -> Deployment {
        var lastEventID: String?
        var reconnects = 0
        while true {
            do {
                for try await event in try await client.events("apps/\(app)/deployments/\(id)/log", lastEventID: lastEventID) {
                    if let eventID = event.id { lastEventID = eventID }
                    if event.name == "line", printLog { FileHandle.standardOutput.write(Data((event.data + "\n").utf8)) }
                }
            } catch let error as ClientError where error.status != nil {
                throw error
            } catch {
                // A dropped connection (a restart of the server): resume where the last line ended.
                reconnects += 1
                if reconnects > 30 { throw error }
                try await Task.sleep(for: .seconds(1))
            }
            let deployment = try await client.get("apps/\(app)/deployments/\(id)", as: Deployment.self)
            if deployment.status.isFinished { return deployment }
        }
    }
}
