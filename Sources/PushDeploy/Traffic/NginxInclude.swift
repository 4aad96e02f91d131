import Foundation

/// The include file pushdeploy owns in an app's nginx site: rendered from ports, parsed back.
///
/// The form follows the app's strategy, never the number of ports (a rolling app down to one
/// instance still gets an `upstream`, because its site config names the upstream):
///
/// - blue-green: one line, `set $service_url http://127.0.0.1:PORT;`. Include the file *inside the
///   `server` block* and write `proxy_pass $service_url;` in the location. The address is an IP
///   literal, so nginx needs no `resolver` for the variable.
/// - rolling: `upstream <app>_backend { server 127.0.0.1:P; … keepalive 16; }`. Include the file at
///   `http` level (next to the `server` block, e.g. from `conf.d/`) and write
///   `proxy_pass http://<app>_backend;` with `proxy_http_version 1.1;` and
///   `proxy_set_header Connection "";` so the keepalive pool is used.
///
/// - canary: `split_clients "${request_id}" $pushdeploy_<app>_url { 10% http://127.0.0.1:NEW; * http://127.0.0.1:OLD; }`
///   during a step, a `map` to one address otherwise. Include the file at `http` level and write
///   `proxy_pass $pushdeploy_<app>_url;`; the fallback location (`proxy_pass $pushdeploy_<app>_fallback;`) goes in the
///   site. Hashing `$request_id` splits per request, not per client: see the README on the trade-off.
///
/// The first line is a comment saying that pushdeploy wrote the file and will replace it.
public enum NginxInclude {
    /// The name of a rolling app's `upstream` block: `<app>_backend` (app names hold only letters, digits, `-`, `_`).
    public static func upstreamName(app: String) -> String { "\(app)_backend" }

    /// The variable a canary app's location proxies to, `$pushdeploy_<app>_url` (a `-` in the name becomes `_`).
    public static func canaryVariable(app: String, _ suffix: String = "url") -> String {
        "$pushdeploy_\(app.replacingOccurrences(of: "-", with: "_"))_\(suffix)"
    }

    /// The file's text for `ports`, in the form `strategy` needs; for a canary step, `ports` is the stable release's port
    /// and the new one's, and `canaryPercent` the share of requests the second gets.
    public static func render(_ ports: [Int], app: String, strategy: Strategy, canaryPercent: Int? = nil) throws(TrafficError) -> String {
        try validate(ports, app: app, strategy: strategy, canaryPercent: canaryPercent)
        switch strategy {
        case let .canary(blue, green, _):
            let url = canaryVariable(app: app), fallback = canaryVariable(app: app, "fallback")
            let header = """
            # Written by pushdeploy for app \(app) (canary); the next switch replaces it, so do not edit.
            # Include it at http level; the location proxies with: proxy_pass \(url);
            # and falls back on the other slot with: error_page 502 504 = @pushdeploy_fallback; plus, in the server block,
            # location @pushdeploy_fallback { proxy_pass \(fallback); }

            """
            if ports.count == 2, let percent = canaryPercent {
                // The same key and shares in both blocks: a request's fallback is the release it was not sent to.
                return header + """
                split_clients "${request_id}" \(url) {
                    \(percent)% http://127.0.0.1:\(ports[1]);
                    * http://127.0.0.1:\(ports[0]);
                }
                split_clients "${request_id}" \(fallback) {
                    \(percent)% http://127.0.0.1:\(ports[0]);
                    * http://127.0.0.1:\(ports[1]);
                }

                """
            }
            let other = ports[0] == blue ? green : blue
            return header + """
            map $request_id \(url) { default http://127.0.0.1:\(ports[0]); }
            map $request_id \(fallback) { default http://127.0.0.1:\(other); }

            """
        case let .blueGreen(blue, green):
            // The other slot (warm after a switch) is the fallback: with `error_page 502 504 = @pushdeploy_fallback;`
            // in the location, a request the live slot cannot take (its JVM just died) is served there instead.
            let other = ports[0] == blue ? green : blue
            return """
            # Written by pushdeploy for app \(app) (blue-green); the next switch replaces it, so do not edit.
            # Include it inside the site's server block; the location proxies with: proxy_pass $service_url;
            # and, to fall back on the other slot while the live one is down: error_page 502 504 = @pushdeploy_fallback;
            set $service_url http://127.0.0.1:\(ports[0]);
            set $pushdeploy_fallback http://127.0.0.1:\(other);
            location @pushdeploy_fallback {
                proxy_pass $pushdeploy_fallback;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                add_header X-Pushdeploy-Upstream $upstream_addr always;
            }

            """
        case .rolling:
            let servers = ports.map { "    server 127.0.0.1:\($0);" }.joined(separator: "\n")
            return """
            # Written by pushdeploy for app \(app) (rolling); the next switch replaces it, so do not edit.
            # Include it at http level; the location proxies with: proxy_pass http://\(upstreamName(app: app));
            upstream \(upstreamName(app: app)) {
            \(servers)
                keepalive 16;
            }

            """
        }
    }

    /// The ports a file in any form points at, in file order (a canary step: the stable release's port first, the one
    /// that gets the rest of the requests); nil when it holds no known form.
    public static func ports(in text: String) -> [Int]? {
        var serviceURL: Int?
        var upstream: [Int] = []
        var inUpstream = false
        var split: (rest: Int?, shares: [Int])?
        var inSplit = false
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.first == "set", words.count >= 3, words[1] == "$service_url" {
                serviceURL = port(ofAddress: words[2])
            } else if ["map", "split_clients"].contains(words.first), words.count >= 3, words[2].hasPrefix("$pushdeploy_"), words[2].hasSuffix("_url") {
                // `map $request_id $pushdeploy_<app>_url { default http://…; }` on one line, or a split_clients block.
                if words.first == "map", let index = words.firstIndex(of: "default"), index + 1 < words.count {
                    serviceURL = port(ofAddress: words[index + 1])
                } else if words.first == "split_clients" {
                    split = (nil, [])
                    inSplit = true
                }
            } else if inSplit, words.count >= 2, let port = port(ofAddress: words[1]) {
                if words[0] == "*" { split?.rest = port } else { split?.shares.append(port) }
            } else if words.first == "upstream" {
                inUpstream = true
            } else if inUpstream, words.first == "server", words.count >= 2, let port = port(ofAddress: words[1]) {
                upstream.append(port)
            } else if line.hasPrefix("}") {
                inUpstream = false
                inSplit = false
            }
        }
        if !upstream.isEmpty { return upstream }
        if let split, let rest = split.rest { return [rest] + split.shares }
        return serviceURL.map { [$0] }
    }

    /// The port of `http://127.0.0.1:8081;`, `127.0.0.1:8081;` or `[::1]:8081`.
    private static func port(ofAddress word: String) -> Int? {
        var address = word
        while let last = address.last, last == ";" || last == "/" { address.removeLast() }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        return port
    }

    private static func validate(_ ports: [Int], app: String, strategy: Strategy, canaryPercent: Int?) throws(TrafficError) {
        if ports.isEmpty {
            throw .invalidPorts(app: app, ports: ports, reason: "no port to send traffic to")
        }
        if let bad = ports.first(where: { !(1...65535).contains($0) }) {
            throw .invalidPorts(app: app, ports: ports, reason: "\(bad) is not a TCP port")
        }
        if Set(ports).count != ports.count {
            throw .invalidPorts(app: app, ports: ports, reason: "a port is listed twice")
        }
        switch strategy {
        case .blueGreen where ports.count != 1:
            throw .invalidPorts(app: app, ports: ports, reason: "blue-green sends traffic to exactly one slot")
        case .canary where ports.count == 2 && !(1...99).contains(canaryPercent ?? 0):
            throw .invalidPorts(app: app, ports: ports, reason: "a canary step gives the new release 1 to 99 % of the requests")
        case .canary where ports.count > 2:
            throw .invalidPorts(app: app, ports: ports, reason: "a canary splits requests between two slots at most")
        default:
            break
        }
        if canaryPercent != nil, ports.count != 2 || strategy.canaryPlan == nil {
            throw .invalidPorts(app: app, ports: ports, reason: "a share of requests needs the canary strategy and two ports")
        }
    }
}
