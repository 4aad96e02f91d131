import ArgumentParser

/// `pushdeploy`: the server and the CLI that talks to it.
@main
struct PushDeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushdeploy",
        abstract: "Zero-downtime deploys of a Gradle bootJar service behind nginx, from a git push.",
        subcommands: [Serve.self, Deploy.self, Rollback.self, Status.self, History.self, Logs.self, Check.self, Demo.self,
                      WriteRecords.self]
    )
}
