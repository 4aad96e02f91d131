#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// Finds the jar a build wrote, by the configured glob.
enum ArtifactFinder {
    /// The runnable jar: matches `glob` (relative to `directory`), is not a `-plain.jar`, and was written after
    /// `since`; among several, the one named for `version`, then the newest. Throws ``BuildError/artifactNotFound(glob:candidates:)``.
    static func find(glob pattern: String, in directory: String, version: String, since: Date) throws(BuildError) -> String {
        let matches = expand(pattern.hasPrefix("/") ? pattern : "\(directory)/\(pattern)")
        var passedOver: [String] = []
        var fresh: [(path: String, modified: Date)] = []
        // Timestamps on some file systems are whole seconds: allow for that rather than pass over a jar just written.
        let freshAfter = since.addingTimeInterval(-2)
        for path in matches {
            let name = (path as NSString).lastPathComponent
            guard name.hasSuffix(".jar") else { continue }
            if name.hasSuffix("-plain.jar") {
                passedOver.append("\(name) (plain jar)")
                continue
            }
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let modified = attributes[.modificationDate] as? Date else { continue }
            guard modified >= freshAfter else {
                passedOver.append("\(name) (older than this build)")
                continue
            }
            fresh.append((path, modified))
        }
        let named = fresh.filter { ($0.path as NSString).lastPathComponent.contains(version) }
        guard let chosen = (named.isEmpty ? fresh : named).max(by: { $0.modified < $1.modified }) else {
            throw .artifactNotFound(glob: pattern, candidates: passedOver)
        }
        return chosen.path
    }

    /// Expands a shell glob (`*`, `?`, `[...]`; no `**`) without a shell.
    static func expand(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0 ..< Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }
    }

    /// SHA-256 of a file, lowercase hex, read in chunks.
    static func sha256(of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ReleaseStoreError.file(operation: "open", path: path, reason: "cannot read")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
