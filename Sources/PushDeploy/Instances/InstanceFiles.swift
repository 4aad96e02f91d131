#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The last lines of an instance's log file, for an error message.
enum LogTail {
    /// The last `lines` lines written at or after byte `offset` (at most the last 64 KiB of them).
    static func read(_ path: String, from offset: Int = 0, lines: Int) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return [] }
        let start = max(UInt64(max(offset, 0)), size > 65_536 ? size - 65_536 : 0)
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        return Array(text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).map(String.init))
    }
}

/// Whether a TCP port is free to listen on, checked before an instance is started there.
enum PortProbe {
    /// False when something already listens on `port` on any IPv4 address (or on `::` with IPv4 mapped).
    ///
    /// With `SO_REUSEADDR`, as the JVM binds, so a port held only by connections in TIME_WAIT counts as free.
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = INADDR_ANY
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // Any other failure (a privileged port, say) is for the app to report; only a conflict is certain here.
        return result == 0 || errno != EADDRINUSE
    }
}
