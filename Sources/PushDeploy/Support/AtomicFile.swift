#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization

/// Writes files so that a reader (or a crash) sees the old content or the new, never a torn one.
public enum AtomicFile {
    private static let flushers = DispatchQueue(label: "pushdeploy.atomic-file", attributes: .concurrent)

    /// Replaces `path` with `data`: write a temporary file beside it, fsync it, rename it over, fsync the folder.
    public static func write(_ data: Data, to path: String) throws {
        try write([(path, data)])
    }

    /// Replaces several files at once, with one flush of each folder: every file is whole, old or new.
    ///
    /// The files are written to temporaries and fsynced, then renamed, then their folders fsynced.
    /// When a path appears twice, the last data wins.
    public static func write(_ files: [(path: String, data: Data)]) throws {
        var latest: [String: Int] = [:]
        for (index, file) in files.enumerated() { latest[file.path] = index }
        let unique = files.enumerated().filter { latest[$0.element.path] == $0.offset }.map(\.element)
        let temporaries = unique.map { temporaryPath(for: $0.path) }
        // The fsyncs run side by side: the file system folds concurrent flushes into one journal commit.
        let failures = Mutex<[Int: any Error]>([:])
        let group = DispatchGroup()
        for index in unique.indices {
            // An overcommitting queue: a thread blocked in fsync does not hold the next file back.
            flushers.async(group: group) {
                do {
                    try writeSynced(unique[index].data, to: temporaries[index])
                } catch {
                    failures.withLock { $0[index] = error }
                }
            }
        }
        group.wait()
        if let failure = failures.withLock({ $0.sorted { $0.key < $1.key }.first?.value }) {
            for temporary in temporaries { unlink(temporary) }
            throw failure
        }
        for (index, file) in unique.enumerated() {
            guard rename(temporaries[index], file.path) == 0 else {
                let error = FileError(operation: "rename", path: file.path, errno: errno)
                for temporary in temporaries[index...] { unlink(temporary) }
                throw error
            }
        }
        for directory in Set(unique.map { parentDirectory(of: $0.path) }) {
            try syncDirectory(directory)
        }
    }

    /// Replaces `path` with `data` through a temporary file and a rename; with `sync` false the data is not
    /// flushed (the caller has made it durable elsewhere, such as the history's journal).
    ///
    /// `isNew`: the caller believes `path` does not exist yet; it is then written to an unnamed file that is
    /// linked into place once whole (one directory entry made instead of a temporary's plus a rename, which
    /// under a flood of pushes is a fifth of the history's file system time). Should the path exist after all,
    /// it is replaced as usual.
    static func replace(_ path: String, with data: Data, sync: Bool, isNew: Bool = false) throws {
        if isNew, !sync, try linkNew(path, data) { return }
        let temporary = temporaryPath(for: path)
        try writeSynced(data, to: temporary, sync: sync)
        guard rename(temporary, path) == 0 else {
            let error = FileError(operation: "rename", path: path, errno: errno)
            unlink(temporary)
            throw error
        }
    }

    #if os(Linux)
    /// `O_TMPFILE` (with `O_DIRECTORY`, as glibc defines it), which the Glibc module does not import.
    private static let openTemporaryFile: Int32 = 0o20000000 | O_DIRECTORY
    /// False once the file system or the system has refused `O_TMPFILE` or the `/proc` link.
    private static let unnamedFilesWork = Atomic<Bool>(true)
    #endif

    /// Creates `path` whole or not at all: an unnamed file in its folder, written, then linked to the name.
    /// False when the name exists or unnamed files are not available here (the caller then renames a temporary).
    private static func linkNew(_ path: String, _ data: Data) throws -> Bool {
        #if os(Linux)
        guard unnamedFilesWork.load(ordering: .relaxed) else { return false }
        let fd = open(parentDirectory(of: path), openTemporaryFile | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL { unnamedFilesWork.store(false, ordering: .relaxed) }
            return false
        }
        defer { close(fd) }
        try writeAll(data, to: fd, path: path)
        // linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the descriptor's /proc link works for anyone.
        if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 { return true }
        switch errno {
        case EEXIST:
            return false
        case ENOENT, EPERM, EACCES, EXDEV, ENOSYS:
            unnamedFilesWork.store(false, ordering: .relaxed)  // no /proc, or a policy against the link
            return false
        default:
            throw FileError(operation: "link", path: path, errno: errno)
        }
        #else
        return false
        #endif
    }

    /// `<folder>/.<name>.<pid>.<random>.tmp`, beside the file it becomes.
    static func temporaryPath(for path: String) -> String {
        let name = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { path[path.index(after: $0)...] } ?? path[...]
        return "\(parentDirectory(of: path))/.\(name).\(processID).\(UInt32.random(in: 0 ... .max)).tmp"
    }

    private static let processID = getpid()

    /// The folder a path is in (`.` for a bare name, `/` for a file at the root).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes all of `bytes` to an open file.
    static func writeAll<Bytes: ContiguousBytes>(_ bytes: Bytes, to fd: Int32, path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FileError(operation: "write", path: path, errno: errno)
                }
                offset += count
            }
        }
    }

    /// Creates `path` (which must not exist), writes `data` and, unless told not to, fsyncs it.
    private static func writeSynced(_ data: Data, to path: String, sync: Bool = true) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(operation: "create", path: path, errno: errno) }
        defer { close(fd) }
        do {
            try writeAll(data, to: fd, path: path)
            if sync, fsync(fd) != 0 { throw FileError(operation: "fsync", path: path, errno: errno) }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Flushes a folder's entries (a rename or a new file) to disk.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: directory, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: directory, errno: errno) }
    }

    /// Creates a folder and its parents (mode 0755 unless given).
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileError(operation: "mkdir", path: path, errno: EIO, detail: error.localizedDescription)
        }
    }
}

/// A file system call that failed, with the path and the reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var code: Int32
    public var detail: String?

    public init(operation: String, path: String, errno code: Int32, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.detail = detail
    }

    public var description: String {
        "\(operation) \(path): \(detail ?? String(cString: strerror(code)))"
    }
}
