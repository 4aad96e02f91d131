import Foundation

/// What `pushdeploy check` reads in `nginx -T` about an app: whether a switch through its include file can be proven.
///
/// A switch is proven by asking `verify_url` and finding the new backend's port in the `X-Pushdeploy-Upstream` header.
/// That holds only if nginx loads the include file, `verify_url` reaches a server that routes through it, and that
/// server adds the header. This reads the configuration as `nginx -T` prints it (every file, in sections headed
/// `# configuration file <path>:`), finds the server blocks, and says what is missing.
public enum NginxRoutingCheck {
    /// The problems for `app`, each with the key it concerns; empty when the switch can be proven.
    public static func problems(app: AppConfig, dump: String) -> [ConfigProblem] {
        guard let nginx = app.nginx else { return [] }
        let key = "apps.\(app.name).nginx"
        var problems: [ConfigProblem] = []
        let sections = Self.sections(dump)
        guard sections.keys.contains(nginx.includeFile) else {
            return [ConfigProblem(path: "\(key).include_file", message: "\(nginx.includeFile) is not part of nginx's configuration "
                                  + "(nginx -T does not show it): include it in the app's site, as examples/nginx-site.conf does")]
        }
        let servers = sections.values.flatMap { Block.parse($0).servers }
        let routing = servers.filter { $0.routes(app: app, includeFile: nginx.includeFile) }
        if routing.isEmpty {
            problems.append(ConfigProblem(path: "\(key).include_file", message: "no server block routes through \(nginx.includeFile) "
                                          + "(blue-green: include it in the server and proxy_pass $service_url; rolling: proxy_pass http://\(NginxInclude.upstreamName(app: app.name)); "
                                          + "canary: include it at http level and proxy_pass \(NginxInclude.canaryVariable(app: app.name)))"))
            return problems
        }
        guard let url = nginx.verifyURL else {
            problems.append(ConfigProblem(path: "\(key).verify_url", message: "not set: nothing proves that nginx sends requests to a new release "
                                          + "(set it to this site on loopback, such as http://127.0.0.1/)"))
            return problems
        }
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http", let host = components.host else {
            problems.append(ConfigProblem(path: "\(key).verify_url", message: "\(url) is not an http:// URL: point it at the site on loopback over plain http"))
            return problems
        }
        let port = components.port ?? 80
        let reached = routing.filter { $0.listenPorts.contains(port) && $0.answers(host: host) }
        if reached.isEmpty {
            let listens = Set(routing.flatMap(\.listenPorts)).sorted().map(String.init).joined(separator: ", ")
            problems.append(ConfigProblem(path: "\(key).verify_url", message: "\(url) does not reach the server that routes \(app.name) "
                                          + "(it listens on \(listens.isEmpty ? "no port" : listens)"
                                          + "\(routing.contains { !$0.serverNames.isEmpty } ? " for \(Set(routing.flatMap(\.serverNames)).sorted().joined(separator: " "))" : ""))"))
        } else if !reached.contains(where: \.addsUpstreamHeader) && !sections.values.contains(where: { Block.parse($0).addsUpstreamHeader }) {
            problems.append(ConfigProblem(path: "\(key).verify_url", message: "the server that routes \(app.name) adds no X-Pushdeploy-Upstream header, "
                                          + "so a switch is proven only when the page at \(url) names the release: add "
                                          + "`add_header X-Pushdeploy-Upstream $upstream_addr always;` to its location (examples/nginx-site.conf)"))
        }
        return problems
    }

    /// The files of an `nginx -T` dump by path.
    static func sections(_ dump: String) -> [String: String] {
        var sections: [String: String] = [:]
        var current: String?
        var text = ""
        for line in dump.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# configuration file "), line.hasSuffix(":") {
                if let current { sections[current] = text }
                current = String(line.dropFirst("# configuration file ".count).dropLast())
                text = ""
            } else if current != nil {
                text += line + "\n"
            }
        }
        if let current { sections[current] = text }
        return sections
    }

    /// A block of nginx configuration: its own directives (words, without the `;`) and the blocks inside it.
    struct Block {
        var name: [String]
        var directives: [[String]] = []
        var children: [Block] = []

        /// Parses one file; comments and quotes are honoured, a syntax error ends the parse where it is.
        static func parse(_ text: String) -> Block {
            var stack = [Block(name: [])]
            var words: [String] = []
            var word = ""
            var quote: Character?
            var comment = false
            func endWord() {
                if !word.isEmpty { words.append(word) }
                word = ""
            }
            for character in text {
                if comment {
                    if character == "\n" { comment = false }
                    continue
                }
                if let open = quote {
                    if character == open { quote = nil } else { word.append(character) }
                    continue
                }
                switch character {
                case "#": endWord(); comment = true
                case "\"", "'": quote = character
                case " ", "\t", "\n", "\r": endWord()
                case ";":
                    endWord()
                    if !words.isEmpty { stack[stack.count - 1].directives.append(words) }
                    words = []
                case "{":
                    endWord()
                    stack.append(Block(name: words))
                    words = []
                case "}":
                    endWord()
                    words = []
                    guard stack.count > 1 else { continue }
                    let closed = stack.removeLast()
                    stack[stack.count - 1].children.append(closed)
                default: word.append(character)
                }
            }
            while stack.count > 1 {
                let closed = stack.removeLast()
                stack[stack.count - 1].children.append(closed)
            }
            return stack[0]
        }

        /// Every `server` block in this one, at any depth.
        var servers: [Block] {
            children.flatMap { $0.name.first == "server" ? [$0] : $0.servers }
        }

        /// Every directive in this block and the blocks inside it.
        var allDirectives: [[String]] {
            directives + children.flatMap(\.allDirectives)
        }

        var listenPorts: [Int] {
            directives.filter { $0.first == "listen" && $0.count >= 2 }.compactMap { words in
                let address = words[1]
                if let port = Int(address) { return port }
                guard let colon = address.lastIndex(of: ":") else { return address.hasPrefix("unix:") ? nil : 80 }
                return Int(address[address.index(after: colon)...])
            }
        }

        var serverNames: [String] {
            directives.filter { $0.first == "server_name" }.flatMap { $0.dropFirst() }
        }

        /// True when a request for `host` may land here: it names the host, or it is the only kind of server that would.
        func answers(host: String) -> Bool {
            let names = serverNames
            if names.isEmpty || names.contains(host) || names.contains("_") || names.contains("*") { return true }
            if directives.contains(where: { $0.first == "listen" && $0.contains("default_server") }) { return true }
            return names.contains { $0.hasPrefix("*.") && host.hasSuffix($0.dropFirst()) }
        }

        func routes(app: AppConfig, includeFile: String) -> Bool {
            allDirectives.contains { words in
                (words.first == "include" && words.dropFirst().contains(includeFile))
                    || (words.first == "proxy_pass" && words.dropFirst().contains("http://\(NginxInclude.upstreamName(app: app.name))"))
                    || (words.first == "proxy_pass" && words.dropFirst().contains(NginxInclude.canaryVariable(app: app.name)))
            }
        }

        var addsUpstreamHeader: Bool {
            allDirectives.contains { $0.first == "add_header" && $0.count >= 3 && $0[1].lowercased() == "x-pushdeploy-upstream" }
        }
    }
}
