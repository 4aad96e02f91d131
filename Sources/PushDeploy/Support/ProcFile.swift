#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Reads a file under `/proc` whole.
///
/// Not `FileManager.contents(atPath:)` or `String(contentsOfFile:)`: they trust the size `stat` reports, 0 for a
/// `/proc` file, and return what one read gives, one page (seen here: 4,050 of 481,800 bytes of `/proc/net/tcp`).
/// A busy connection table, a JVM's or Gradle daemon's long command line (its class path comes before the main
/// class) or a large environment would be cut.
enum ProcFile {
    /// The file's bytes; nil when it cannot be opened (no such process) or holds nothing.
    static func read(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = Data()
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes.isEmpty ? nil : bytes
    }
}
