import ArgumentParser
import Foundation
import PushDeploy

/// `pushdeploy check`: validate a config and the tools it names.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a config file and the tools it names; exit non-zero on problems.")

    @Option(help: "The config file.")
    var config = "/etc/pushdeploy/pushdeploy.yml"

    func run() async throws {
        let loaded: Config
        do {
            loaded = try ConfigLoader().load(path: config)
        } catch {
            print(error.description)
            throw ExitCode.failure
        }
        let problems = ToolCheck.problems(loaded)
        if problems.isEmpty {
            print("\(config): ok, \(loaded.apps.count) app(s): \(loaded.apps.map(\.name).joined(separator: ", "))")
            return
        }
        print(ConfigError(file: config, problems: problems).description)
        throw ExitCode.failure
    }
}
