import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// A private nginx on a loopback port, with its own prefix, for one test; always stopped.
final class PrivateNginx: Sendable {
    let prefix: String
    let port: Int
    let includeFile: String

    /// Writes a config that proxies `/` through the include file (`$service_url` for blue-green, `<app>_backend` for rolling).
    init(prefix: String, app: String, rolling: Bool) throws {
        self.prefix = prefix
        port = Integration.freePort()
        includeFile = prefix + "/conf/\(app).inc"
        try FileManager.default.createDirectory(atPath: prefix + "/conf", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix + "/temp", withIntermediateDirectories: true)
        let proxy = rolling ? "proxy_pass http://\(app)_backend;" : "proxy_pass $service_url;"
        let site = """
        worker_processes 1;
        pid \(prefix)/logs/nginx.pid;
        error_log \(prefix)/logs/error.log warn;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path \(prefix)/temp/body;
            proxy_temp_path \(prefix)/temp/proxy;
            fastcgi_temp_path \(prefix)/temp/fastcgi;
            uwsgi_temp_path \(prefix)/temp/uwsgi;
            scgi_temp_path \(prefix)/temp/scgi;
            \(rolling ? "include \(includeFile);" : "")
            server {
                listen 127.0.0.1:\(port);
                \(rolling ? "" : "include \(includeFile);")
                location / {
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_next_upstream error timeout http_502 http_503;
                    \(proxy)
                }
            }
        }
        """
        try site.write(toFile: prefix + "/conf/nginx.conf", atomically: true, encoding: .utf8)
    }

    /// The argument lists pushdeploy's config gives for this instance.
    var nginxConfig: NginxConfig {
        NginxConfig(includeFile: includeFile,
                    test: ["/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/conf/nginx.conf", "-t", "-q"],
                    reload: ["/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/conf/nginx.conf", "-s", "reload"],
                    verifyURL: "http://127.0.0.1:\(port)/")
    }

    /// Starts nginx once the include file exists (pushdeploy writes the first one on the first switch).
    func start() throws {
        let (status, output) = try Integration.spawnAndWait("/usr/sbin/nginx", ["-p", prefix, "-c", prefix + "/conf/nginx.conf"],
                                                            outputPath: prefix + "/logs/start.out")
        guard status == 0 else { throw ServerExited(log: "nginx did not start: \(output)") }
    }

    func stop() {
        _ = try? Integration.spawnAndWait("/usr/sbin/nginx", ["-p", prefix, "-c", prefix + "/conf/nginx.conf", "-s", "quit"],
                                          outputPath: prefix + "/logs/stop.out")
        if let text = try? String(contentsOfFile: prefix + "/logs/nginx.pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            for _ in 0..<50 where kill(pid, 0) == 0 { usleep(20_000) }
            kill(pid, SIGKILL)
        }
    }

    deinit { stop() }

    /// GET through nginx: the status and body, or nil when the connection failed.
    func get(_ path: String = "/") -> (Int, String)? {
        guard let (status, output) = try? Integration.run("/usr/bin/curl", ["-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]),
              status == 0 else { return nil }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }
}
