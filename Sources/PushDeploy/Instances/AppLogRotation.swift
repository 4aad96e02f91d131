#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Rotates an instance's stdout log by size without restarting the app: copy, then truncate.
///
/// The app writes its log through a descriptor opened with `O_APPEND` (see ``ProcessAppSupervisor``), so after
/// the truncation its next line lands at the new start of the file. `<port>.log.1` is the newest rotated file;
/// `keep` of them are kept. Lines written between the copy and the truncation are lost: a few at most.
public enum AppLogRotation {
    /// Rotates `path` when it has grown past `maxBytes`; returns true when it did.
    @discardableResult
    public static func rotateIfNeeded(_ path: String, maxBytes: Int, keep: Int = 3) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) > maxBytes else { return false }
        for index in stride(from: keep - 1, through: 1, by: -1) {
            rename("\(path).\(index)", "\(path).\(index + 1)")
        }
        guard copy(path, to: "\(path).1") else { return false }
        let fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return ftruncate(fd, 0) == 0
    }

    private static func copy(_ source: String, to destination: String) -> Bool {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { close(input) }
        unlink(destination)
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard output >= 0 else { return false }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count == 0 { return true }
            if count < 0 { if errno == EINTR { continue } else { return false } }
            guard (try? AtomicFile.writeAll(buffer[..<count].withUnsafeBytes { Data($0) }, to: output, path: destination)) != nil else { return false }
        }
    }
}
