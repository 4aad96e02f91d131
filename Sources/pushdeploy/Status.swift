import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy status`: the live release and the queue.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the live release and what runs or waits.")

    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await runReporting {
            let client = try options.client()
            let (_, data) = try await client.send("GET", "\(options.prefix)status")
            if options.json {
                print(String(decoding: data, as: UTF8.self), terminator: "")
                return
            }
            let status = try JSONDecoder.pushDeploy.decode(AppStatus.self, from: data)
            print("app:       \(status.app) (\(status.strategy))")
            if let live = status.live {
                print("live:      \(live.version ?? "?") (commit \(String((live.commit ?? "?").prefix(12))), deployment \(live.deployment), since \(Table.date(live.since)))")
            } else {
                print("live:      nothing deployed by pushdeploy yet")
            }
            for instance in status.instances {
                print("instance:  \(instance.slot) port \(instance.port) \(instance.role) \(instance.version)\(instance.pid.map { " pid \($0)" } ?? "")")
            }
            if let running = status.queue.running {
                print("running:   \(running.kind.rawValue) \(running.id) (\(running.phase.rawValue))")
            } else {
                print("running:   nothing")
            }
            print("waiting:   \(status.queue.waiting.isEmpty ? "nothing" : status.queue.waiting.map { "\($0.kind.rawValue) \($0.id)" }.joined(separator: ", "))")
            if let last = status.lastDeployment {
                print("last:      \(last.kind.rawValue) \(last.id) \(last.status.rawValue)\(last.error.map { ": \($0)" } ?? "")")
                for step in last.guardSteps ?? [] {
                    print("guard:     \(step)")
                }
            }
        }
    }
}
