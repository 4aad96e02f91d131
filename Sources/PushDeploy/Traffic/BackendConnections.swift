import Foundation

/// Open TCP connections to a backend port on this machine, read from `/proc/net/tcp` and `/proc/net/tcp6`.
///
/// After a reload, nginx's retired workers finish their requests and may still pass one (a keep-alive one, or a
/// connection accepted just before the signal) to the backend they were configured with. Stopping that backend
/// while a connection to it is open would turn such a request into a 502, so a switch that took a port out of
/// nginx waits until no connection to it is left. The socket tables list every process's connections, also
/// when `/proc` hides other users' processes (systemd's `ProtectProc=invisible`), so this works in the shipped unit.
enum BackendConnections {
    /// The established connections whose remote end is `port`.
    static func count(toPort port: Int) -> Int {
        ["/proc/net/tcp", "/proc/net/tcp6"].reduce(0) { total, path in
            // Read whole (ProcFile): a table cut at its first page hid connections further down, and the wait ended at once.
            total + count(inTable: String(decoding: ProcFile.read(path) ?? Data(), as: UTF8.self), toPort: port)
        }
    }

    /// Counts the rows of a `/proc/net/tcp`-style table in state ESTABLISHED whose remote address has `port`.
    static func count(inTable table: String, toPort port: Int) -> Int {
        let wanted = String(format: "%04X", port)
        var found = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // sl, local_address, rem_address, st, …
            guard fields.count > 3, fields[3] == "01", let colon = fields[2].lastIndex(of: ":") else { continue }
            if fields[2][fields[2].index(after: colon)...] == wanted { found += 1 }
        }
        return found
    }

    /// Waits until no connection to any of `ports` is open; false when some still are at `timeout`.
    static func waitUntilClosed(ports: Set<Int>, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if ports.allSatisfy({ count(toPort: $0) == 0 }) { return true }
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
