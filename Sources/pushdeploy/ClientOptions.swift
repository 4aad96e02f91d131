import ArgumentParser
import Foundation
import PushDeploy

/// How the CLI finds and authenticates to the server.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server's URL (default: $PUSHDEPLOY_URL, the config's listen address, or http://127.0.0.1:9000).")
    var url: String?

    @Option(help: "A file holding the API token (default: $PUSHDEPLOY_TOKEN, or the config's token_file).")
    var tokenFile: String?

    @Option(help: "A pushdeploy.yml to read the listen address and token from.")
    var config: String?

    @Option(help: "The app (needed when the server has several).")
    var app: String?

    @Flag(help: "Print JSON for scripts instead of tables.")
    var json = false

    /// The client for these options.
    func client() throws -> PushDeployClient {
        let environment = ProcessInfo.processInfo.environment
        var loaded: Config?
        if let config {
            do {
                loaded = try ConfigLoader(environment: environment).load(path: config)
            } catch {
                throw CLIError(error.description)
            }
        }
        var token: Secret?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw CLIError("cannot read token file \(tokenFile)")
            }
            token = Secret(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        } else if let value = environment["PUSHDEPLOY_TOKEN"], !value.isEmpty {
            token = Secret(value)
        } else {
            token = loaded?.token
        }
        let address = url ?? environment["PUSHDEPLOY_URL"]
            ?? loaded.map { "http://\($0.listen.host == "0.0.0.0" ? "127.0.0.1" : $0.listen.host):\($0.listen.port)" }
            ?? "http://127.0.0.1:9000"
        guard let base = URL(string: address.hasSuffix("/") ? address : address + "/"), base.scheme != nil else {
            throw CLIError("'\(address)' is not a URL")
        }
        return PushDeployClient(baseURL: base, token: token)
    }

    /// The path prefix for app routes: `apps/<app>/` or, with no app given, the single-app routes.
    var prefix: String {
        app.map { "apps/\($0)/" } ?? ""
    }
}

/// A CLI failure: printed as one line, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a CLI body and turns any failure into a one-line reason and exit status 1.
func runReporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        let line = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        FileHandle.standardError.write(Data("pushdeploy: \(line)\n".utf8))
        throw ExitCode.failure
    }
}
