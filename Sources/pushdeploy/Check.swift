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
        for warning in loaded.warnings { print("warning: \(warning)") }
        var problems = ToolCheck.problems(loaded)
        for app in loaded.apps {
            guard let nginx = app.nginx, ToolCheck.find(nginx.test[0], path: ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") != nil else { continue }
            // nginx -T prints the whole configuration it would load, every included file in its own section.
            let dumpCommand = nginx.test.contains("-t") ? nginx.test.map { $0 == "-t" ? "-T" : $0 } : nginx.test + ["-T"]
            let output = MemoryDeploymentLog()
            let result = try? await SubprocessCommandRunner().run(Command(dumpCommand), log: output, timeout: .seconds(20))
            guard let result, result.status.isSuccess else {
                print("note: \(app.name): could not read nginx's configuration with `\(dumpCommand.joined(separator: " "))`"
                      + " (\(result.map { $0.outputTail.suffix(2).joined(separator: " ") } ?? "it did not run")); the routing is not checked")
                continue
            }
            problems += NginxRoutingCheck.problems(app: app, dump: output.text)
        }
        if problems.isEmpty {
            print("\(config): ok, \(loaded.apps.count) app(s): \(loaded.apps.map(\.name).joined(separator: ", "))")
            return
        }
        print(ConfigError(file: config, problems: problems).description)
        throw ExitCode.failure
    }
}
