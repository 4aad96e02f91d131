import Foundation

/// Lays out the local demo: a git repository of the demo app, a private nginx config, a token and a `pushdeploy.yml`.
public struct DemoSetup: Sendable {
    /// The work folder everything goes into.
    public var directory: String
    /// The demo app's sources (`examples/demo-app`).
    public var source: String
    public var serverPort: Int
    public var nginxPort: Int
    public var slots: (blue: Int, green: Int)

    public init(directory: String, source: String, serverPort: Int, nginxPort: Int, slots: (blue: Int, green: Int)) {
        self.directory = directory
        self.source = source
        self.serverPort = serverPort
        self.nginxPort = nginxPort
        self.slots = slots
    }

    public var repository: String { directory + "/demo-app" }
    public var configPath: String { directory + "/pushdeploy.yml" }
    public var tokenPath: String { directory + "/token" }
    public var nginxPrefix: String { directory + "/nginx" }
    public var nginxConf: String { nginxPrefix + "/conf/nginx.conf" }
    public var includeFile: String { nginxPrefix + "/conf/demo.inc" }
    public var nginxCommand: [String] { ["nginx", "-p", nginxPrefix, "-c", nginxConf] }

    /// Writes every file and makes the repository with one commit; returns that commit id.
    public func prepare() async throws -> String {
        let files = FileManager.default
        if files.fileExists(atPath: directory) { try files.removeItem(atPath: directory) }
        for folder in [directory, nginxPrefix + "/conf", nginxPrefix + "/logs", nginxPrefix + "/temp", directory + "/state"] {
            try AtomicFile.makeDirectory(folder)
        }
        try files.copyItem(atPath: source, toPath: repository)
        for leftover in ["build", ".gradle"] { try? files.removeItem(atPath: repository + "/" + leftover) }
        let commit = try await GitRepositoryMaker.initialCommit(at: repository, message: "demo-app: first version")

        let token = (0..<4).map { _ in String(UInt64.random(in: 0 ... .max), radix: 16) }.joined()
        try AtomicFile.write(Data((token + "\n").utf8), to: tokenPath)
        // nginx needs the include file to start; it points at the blue slot until the first deployment switches.
        try AtomicFile.write(Data("set $service_url http://127.0.0.1:\(slots.blue);\n".utf8), to: includeFile)
        try AtomicFile.write(Data(nginxConfig.utf8), to: nginxConf)
        try AtomicFile.write(Data(pushdeployConfig.utf8), to: configPath)
        return commit
    }

    var nginxConfig: String {
        """
        # The demo's private nginx: pushdeploy rewrites demo.inc and reloads it.
        worker_processes 1;
        pid \(nginxPrefix)/logs/nginx.pid;
        error_log \(nginxPrefix)/logs/error.log warn;
        events { worker_connections 512; }
        http {
            access_log off;
            client_body_temp_path \(nginxPrefix)/temp/body;
            proxy_temp_path \(nginxPrefix)/temp/proxy;
            fastcgi_temp_path \(nginxPrefix)/temp/fastcgi;
            uwsgi_temp_path \(nginxPrefix)/temp/uwsgi;
            scgi_temp_path \(nginxPrefix)/temp/scgi;
            server {
                listen 127.0.0.1:\(nginxPort);
                include \(includeFile);
                location / {
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_pass $service_url;
                }
            }
        }

        """
    }

    var pushdeployConfig: String {
        """
        # Written by `pushdeploy demo`: one app, blue-green on two loopback ports behind a private nginx.
        listen: 127.0.0.1:\(serverPort)
        state_dir: state
        token_file: token
        apps:
          demo:
            repository: { url: \(repository), branch: main }
            build:
              command: [gradle, --offline, -q, bootJar]
              version: "1.0.1-SNAPSHOT-{timestamp}"
              artifact: build/libs/*.jar
              timeout: 10m
            run:
              command: [java, -XX:TieredStopAtLevel=1, -jar, "{jar}", "--server.port={port}", "--shutdown-grace=5s"]
              stop_timeout: 10s
            strategy: blue-green
            slots: { blue: \(slots.blue), green: \(slots.green) }
            health: { path: /actuator/health, expect_status: 200, expect_body: UP, interval: 200ms, startup_timeout: 120s }
            watch: 5s
            nginx:
              include_file: \(includeFile)
              test: [\(nginxCommand.joined(separator: ", ")), -t, -q]
              reload: [\(nginxCommand.joined(separator: ", ")), -s, reload]
              verify_url: http://127.0.0.1:\(nginxPort)/
            keep_releases: 5

        """
    }
}
