import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// A private nginx on a loopback port, with its own prefix, for one test; always stopped, workers included.
final class PrivateNginx: Sendable {
    let prefix: String
    let port: Int
    let includeFile: String
    /// The master's pid once started: it leads a session of its own (nginx daemonizes with `setsid`).
    private let master = Mutex<pid_t?>(nil)

    /// Writes a config that proxies `/` through the include file (`$service_url` for blue-green, `<app>_backend` for rolling,
    /// `$pushdeploy_<app>_url` for canary). `readTimeout` is nginx's `proxy_read_timeout` (its default is 60 s).
    init(prefix: String, app: String, rolling: Bool, canary: Bool = false, readTimeout: Duration? = nil, port: Int = Integration.freePort()) throws {
        self.prefix = prefix
        self.port = port
        includeFile = prefix + "/conf/\(app).inc"
        try FileManager.default.createDirectory(atPath: prefix + "/conf", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix + "/temp", withIntermediateDirectories: true)
        let proxy = rolling ? "proxy_pass http://\(app)_backend;" : canary ? "proxy_pass \(NginxInclude.canaryVariable(app: app));" : "proxy_pass $service_url;"
        let atHTTPLevel = rolling || canary
        let timeout = readTimeout.map { "proxy_read_timeout \(DurationParser.format($0));" } ?? ""
        // The canary's include sets variables at http level; the fallback location is the site's.
        let canaryFallback = canary ? """
                location @pushdeploy_fallback {
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    \(timeout)
                    add_header X-Pushdeploy-Upstream $upstream_addr always;
                    proxy_pass \(NginxInclude.canaryVariable(app: app, "fallback"));
                }
        """ : ""
        let site = """
        worker_processes 1;
        pid \(prefix)/logs/nginx.pid;
        error_log \(prefix)/logs/error.log warn;
        events { worker_connections 1024; }
        http {
            # pushdeploy's access log format (examples/nginx-site.conf): the guard's signal.
            log_format pushdeploy '$msec\t$status\t$upstream_addr\t$upstream_status\t$request_time\t$upstream_response_time';
            access_log \(prefix)/logs/pushdeploy.log pushdeploy;
            client_body_temp_path \(prefix)/temp/body;
            proxy_temp_path \(prefix)/temp/proxy;
            fastcgi_temp_path \(prefix)/temp/fastcgi;
            uwsgi_temp_path \(prefix)/temp/uwsgi;
            scgi_temp_path \(prefix)/temp/scgi;
            \(atHTTPLevel ? "include \(includeFile);" : "")
            server {
                listen 127.0.0.1:\(port);
                \(atHTTPLevel ? "" : "include \(includeFile);")
                location / {
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_next_upstream error timeout http_502 http_503;
                    add_header X-Pushdeploy-Upstream $upstream_addr always;
                    \(rolling ? "" : "error_page 502 504 = @pushdeploy_fallback;")
                    \(timeout)
                    \(proxy)
                }
        \(canaryFallback)
            }
        }
        """
        try site.write(toFile: prefix + "/conf/nginx.conf", atomically: true, encoding: .utf8)
    }

    /// The argument lists pushdeploy's config gives for this instance.
    var nginxConfig: NginxConfig {
        var config = NginxConfig(includeFile: includeFile,
                                 test: ["/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/conf/nginx.conf", "-t", "-q"],
                                 reload: ["/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/conf/nginx.conf", "-s", "reload"],
                                 verifyURL: "http://127.0.0.1:\(port)/")
        config.accessLog = prefix + "/logs/pushdeploy.log"
        return config
    }

    /// Starts nginx once the include file exists (pushdeploy writes the first one on the first switch).
    ///
    /// nginx daemonizes: the master leads a new session, and it has bound its port before the starting process exits.
    func start() throws {
        let (status, output) = try Integration.spawnAndWait("/usr/sbin/nginx", ["-p", prefix, "-c", prefix + "/conf/nginx.conf"],
                                                            outputPath: prefix + "/logs/start.out")
        let pid = (try? String(contentsOfFile: prefix + "/logs/nginx.pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        master.withLock { $0 = pid }
        guard status == 0, pid != nil else {
            stop()
            throw ServerExited(log: "nginx did not start: \(output)")
        }
    }

    /// Stops nginx with `-s quit` and waits until the master and every worker are gone; SIGKILL after five seconds.
    ///
    /// Workers are found by their session, not by their command line (`nginx: worker process` names no prefix):
    /// they stay in the master's session even when the master died first, and Linux hands out no session's
    /// number to a new process while a member of that session lives.
    func stop() {
        guard let leader = master.withLock({ pid in defer { pid = nil }; return pid }) else { return }
        let session = { TestProcesses.all().filter { $0.session == leader } }
        guard !session().isEmpty else { return }
        _ = try? Integration.spawnAndWait("/usr/sbin/nginx", ["-p", prefix, "-c", prefix + "/conf/nginx.conf", "-s", "quit"],
                                          outputPath: prefix + "/logs/stop.out")
        // The signal went through `-s quit` already; SIGQUIT again only repeats it.
        TestProcesses.stop(signal: SIGQUIT, session)
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
