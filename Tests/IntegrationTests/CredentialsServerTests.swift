import Foundation
import Testing
@testable import PushDeploy

/// A real `pushdeploy serve` whose secrets are systemd credentials, as under the shipped unit's `LoadCredential=`.
@Suite("Secrets as systemd credentials, against a running server")
struct CredentialsServerTests {
    @Test("the token and webhook secret come from $CREDENTIALS_DIRECTORY; a build gets neither, nor the variable",
          .enabled(if: ["/usr/bin/git", "/usr/bin/curl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }),
          .timeLimit(.minutes(2)))
    func credentialsReachTheServerButNotTheBuild() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-credentials-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let credentials = folder + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/nginx", withIntermediateDirectories: true)
        let token = "credential-token-\(UUID().uuidString)"
        let secret = "credential-secret-\(UUID().uuidString)"
        // As systemd writes them: read-only files in a folder of their own.
        for (id, value) in ["api-token": token, "github-secret": secret] {
            try "\(value)\n".write(toFile: credentials + "/" + id, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: credentials + "/" + id)
        }
        let source = folder + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "hello\n".write(toFile: source + "/README", atomically: true, encoding: .utf8)
        for arguments in [["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "one"]] {
            let (status, output) = try Integration.run("/usr/bin/git", ["-C", source] + arguments)
            try #require(status == 0, "git \(arguments): \(output)")
        }
        let dump = folder + "/build-environment.txt"
        let port = Integration.freePort()
        try """
        listen: 127.0.0.1:\(port)
        state_dir: \(folder)/state
        token_file: $CREDENTIALS_DIRECTORY/api-token
        apps:
          shop:
            repository: { url: \(source), branch: main }
            webhooks: { github: { secret_file: $CREDENTIALS_DIRECTORY/github-secret } }
            build:
              command: ["/bin/sh", "-c", "env > \(dump); exit 3"]
            strategy: blue-green
            slots: { blue: \(Integration.freePort()), green: \(Integration.freePort()) }
            nginx: { include_file: \(folder)/nginx/shop.inc }
        """.write(toFile: folder + "/pushdeploy.yml", atomically: true, encoding: .utf8)
        let server = try RunningServer(config: folder + "/pushdeploy.yml", port: port, logPath: folder + "/server.log",
                                       environment: [SystemdCredentials.variable: credentials])
        defer { server.stop() }
        try await server.waitUntilReady()

        // The token systemd handed over opens the API; another does not.
        let deployURL = "http://127.0.0.1:\(port)/deploy"
        let (_, refused) = try Integration.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                                                 "-H", "Authorization: Bearer wrong", deployURL])
        #expect(refused == "401")
        let (_, accepted) = try Integration.run("/usr/bin/curl", ["-s", "-X", "POST", "-H", "Authorization: Bearer \(token)",
                                                                  "-H", "Content-Type: application/json", "--data", "{}", deployURL])
        let id = try #require(ServeLab.deploymentID(in: accepted), "deploy answered: \(accepted)")

        let record = String(format: "%@/state/deployments/shop/%06d.json", folder, id)
        let deadline = ContinuousClock.now + .seconds(60)
        var finished = false
        while !finished, ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: record),
               let deployment = try? JSONDecoder.pushDeploy.decode(Deployment.self, from: data) {
                finished = deployment.status.isFinished
            }
            if !finished { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(finished, "the deployment did not end")
        let environment = try String(contentsOfFile: dump, encoding: .utf8)
        #expect(!environment.contains(token) && !environment.contains(secret), "the build saw a secret")
        #expect(!environment.contains(SystemdCredentials.variable) && !environment.contains(credentials),
                "the build was told where the credentials are:\n\(environment)")
        let names = Set(environment.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        #expect(names.isSubset(of: Set(ChildEnvironment.passedThrough + ["DEPLOY_VERSION", "DEPLOY_COMMIT", "DEPLOY_APP", "DEPLOY_ID",
                                                                           "PWD", "SHLVL", "_"])),
                "\(names.sorted())")
    }
}
