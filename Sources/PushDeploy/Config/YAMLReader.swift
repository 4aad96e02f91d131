import Foundation
import Yams

/// Walks a YAML tree with a key path, collecting every problem instead of stopping at the first.
final class YAMLReader {
    private(set) var problems: [ConfigProblem] = []
    /// Allowed but unsafe settings, such as a secret file others can read.
    var warnings: [String] = []

    func problem(_ path: String, _ node: Node?, _ message: String) {
        problems.append(ConfigProblem(path: path, line: node?.mark.map { $0.line }, message: message))
    }

    /// A mapping with only `allowed` keys; unknown keys are reported.
    func mapping(_ node: Node?, _ path: String, allowed: [String]) -> [String: Node]? {
        guard let node else { return nil }
        guard let mapping = node.mapping else {
            problem(path, node, "expected a mapping of keys, found \(kind(node))")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else {
                problem(path, keyNode, "keys must be text")
                continue
            }
            if !allowed.contains(key) {
                let hint = nearest(key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                problem(join(path, key), keyNode, "unknown key '\(key)'\(hint); known keys: \(allowed.joined(separator: ", "))")
                continue
            }
            result[key] = value
        }
        return result
    }

    /// The keys of a mapping in file order, for sections whose keys are names (apps, env).
    func orderedMapping(_ node: Node?, _ path: String) -> [(String, Node, Node)] {
        guard let node else { return [] }
        guard let mapping = node.mapping else {
            problem(path, node, "expected a mapping, found \(kind(node))")
            return []
        }
        return mapping.compactMap { keyNode, value in
            guard let key = keyNode.string else {
                problem(path, keyNode, "keys must be text")
                return nil
            }
            return (key, keyNode, value)
        }
    }

    func string(_ map: [String: Node]?, _ key: String, _ path: String, required: Bool = false) -> String? {
        guard let node = map?[key] else {
            if required, map != nil { problem(join(path, key), nil, "missing (required)") }
            return nil
        }
        guard case let .scalar(scalar) = node else {
            problem(join(path, key), node, "expected text, found \(kind(node))")
            return nil
        }
        if required, scalar.string.isEmpty {
            problem(join(path, key), node, "must not be empty")
            return nil
        }
        return scalar.string
    }

    func int(_ map: [String: Node]?, _ key: String, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let node = map?[key] else { return nil }
        guard let text = node.scalar?.string, let value = Int(text) else {
            problem(join(path, key), node, "expected a whole number, found '\(describe(node))'")
            return nil
        }
        guard range.contains(value) else {
            problem(join(path, key), node, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    /// A size in bytes: `512`, `64KiB`, `10MiB`, `1GiB` (also `K`, `M`, `G` for the same; `KB`, `MB`, `GB` are powers of 1000).
    func size(_ map: [String: Node]?, _ key: String, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let node = map?[key] else { return nil }
        guard let text = node.scalar?.string, let value = Self.parseSize(text) else {
            problem(join(path, key), node, "bad size '\(describe(node))' (write it like 512KiB, 10MiB or 1GiB)")
            return nil
        }
        guard range.contains(value) else {
            problem(join(path, key), node, "\(value) bytes is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard let number = Int(digits) else { return nil }
        let units: [String: Int] = ["": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1_000_000,
                                    "mib": 1 << 20, "g": 1 << 30, "gb": 1_000_000_000, "gib": 1 << 30]
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard let factor = units[unit] else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : bytes
    }

    func bool(_ map: [String: Node]?, _ key: String, _ path: String) -> Bool? {
        guard let node = map?[key] else { return nil }
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(join(path, key), node, "expected true or false, found '\(describe(node))'")
            return nil
        }
    }

    func duration(_ map: [String: Node]?, _ key: String, _ path: String, positive: Bool = true) -> Duration? {
        guard let node = map?[key] else { return nil }
        guard let text = node.scalar?.string, let value = DurationParser.parse(text) else {
            problem(join(path, key), node, "bad duration '\(describe(node))' (write it like 250ms, 30s, 15m or 1h)")
            return nil
        }
        if positive, value <= .zero {
            problem(join(path, key), node, "must be longer than 0")
            return nil
        }
        return value
    }

    /// An argument list: a YAML sequence, or one text that is a single argument (never split like a shell would).
    func argumentList(_ map: [String: Node]?, _ key: String, _ path: String) -> [String]? {
        guard let node = map?[key] else { return nil }
        let arguments: [String]
        switch node {
        case let .scalar(scalar):
            arguments = [scalar.string]
        case let .sequence(sequence):
            var list: [String] = []
            for item in sequence {
                guard let text = item.scalar?.string else {
                    problem(join(path, key), item, "each argument must be text, found \(kind(item))")
                    return nil
                }
                list.append(text)
            }
            arguments = list
        default:
            problem(join(path, key), node, "expected a list of arguments, found \(kind(node))")
            return nil
        }
        guard let first = arguments.first, !first.isEmpty else {
            problem(join(path, key), node, "must name a program to run")
            return nil
        }
        return arguments
    }

    func stringMap(_ map: [String: Node]?, _ key: String, _ path: String) -> [String: String]? {
        guard let node = map?[key] else { return nil }
        var result: [String: String] = [:]
        for (name, keyNode, value) in orderedMapping(node, join(path, key)) {
            guard let text = value.scalar?.string else {
                problem(join(join(path, key), name), keyNode, "expected text, found \(kind(value))")
                continue
            }
            result[name] = text
        }
        return result
    }

    func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    private func kind(_ node: Node) -> String {
        switch node {
        case .scalar: "'\(describe(node))'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func describe(_ node: Node) -> String {
        node.scalar?.string ?? "…"
    }

    private func nearest(_ key: String, in allowed: [String]) -> String? {
        allowed.min { distance(key, $0) < distance(key, $1) }.flatMap { distance(key, $0) <= 2 ? $0 : nil }
    }

    private func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}
