import ArgumentParser
import Dispatch
import NIOCore
import NIOPosix

/// The entry point: parses the command line and runs the command.
///
/// `serve` first makes NIO's event loops the executor of all async code, so that a webhook is read, checked,
/// queued and answered on the loop its connection lives on, without a hop to Swift's global pool and back for
/// every await (about a tenth more pushes a second under a flood). Blocking work never runs on those
/// threads: libgit2, probes and the history's disk writes have dispatch queues of their own.
@main
enum Main {
    static func main() {
        if CommandLine.arguments.dropFirst().first == "serve" {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        Task {
            await PushDeployCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}

/// `pushdeploy`: the server and the CLI that talks to it.
struct PushDeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushdeploy",
        abstract: "Zero-downtime deploys of a Gradle bootJar service behind nginx, from a git push.",
        subcommands: [Serve.self, Deploy.self, Rollback.self, Status.self, History.self, Logs.self, Check.self, Demo.self,
                      WriteRecords.self]
    )
}
