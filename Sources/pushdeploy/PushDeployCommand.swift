import ArgumentParser
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
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
            limitMallocArenas()
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        Task {
            await PushDeployCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}

/// glibc gives each busy thread an arena of its own; a long-running server with two event loops and a few
/// dispatch threads keeps far more memory than it uses. Two arenas hold the resident size down. It must be set
/// before the first threads start (the event loops above), or they have taken arenas of their own already.
/// Fixed mmap and trim thresholds keep glibc from raising them after a burst of large buffers (which would keep
/// those buffers in the heap for good). `mallopt` and its parameters live in <malloc.h>, which the Glibc module
/// does not import.
private func limitMallocArenas() {
    #if canImport(Glibc)
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let (trimThreshold, mmapThreshold, arenaMax): (Int32, Int32, Int32) = (-1, -3, -8)  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX
    if let mallopt = dlsym(nil, "mallopt") {
        let set = unsafeBitCast(mallopt, to: Mallopt.self)
        _ = set(arenaMax, 2)
        _ = set(mmapThreshold, 128 * 1024)
        _ = set(trimThreshold, 128 * 1024)
    }
    #endif
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
