/// Reads a few fields out of a JSON document without building the document.
///
/// A push payload is 5 to 30 KB of which a webhook needs a dozen strings; decoding it whole with `JSONDecoder`
/// took a seventh of the server's time under a flood of pushes. This reader checks the whole document's
/// syntax (a malformed body is refused as before) but turns only the wanted values into Swift values.
///
/// Wanted fields are dotted paths: `ref`, `repository.full_name`; `commits[].message` reads the field of every
/// element of an array, and the last one read wins. A wanted field holding `null` counts as absent, as with
/// `decodeIfPresent`; one of another type than asked for, or an object on the way to it that is not an
/// object (or array), is an error naming the path.
public struct JSONFieldReader: Sendable {
    /// What a wanted field must hold.
    public enum Kind: Sendable {
        case string
        case bool
    }

    /// A value read.
    public enum Value: Sendable, Equatable {
        case string(String)
        case bool(Bool)
    }

    /// Why a document cannot be read.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The wanted path whose value has the wrong type; nil when the document itself is not JSON.
        public var path: String?
        public var reason: String

        public var description: String {
            path.map { "unexpected value at \($0)" } ?? reason
        }
    }

    /// The wanted fields as a tree: each node is an object's wanted keys, or an array's elements.
    private final class Node: Sendable {
        let path: String
        let kind: Kind?
        let keys: [(name: [UInt8], node: Node)]
        let elements: Node?

        init(path: String, kind: Kind?, keys: [(name: [UInt8], node: Node)], elements: Node?) {
            self.path = path
            self.kind = kind
            self.keys = keys
            self.elements = elements
        }

        func child(named name: UnsafeBufferPointer<UInt8>) -> Node? {
            for key in keys where key.name.count == name.count {
                if key.name.withUnsafeBufferPointer({ $0.elementsEqual(name) }) { return key.node }
            }
            return nil
        }
    }

    private let root: Node
    /// Deeper documents are refused (JSONDecoder's limit too): a hostile body must not exhaust the stack.
    static let maximumDepth = 512

    /// `fields`: each wanted path with the type it must hold.
    public init(_ fields: [String: Kind]) {
        root = Self.node(path: "", fields: fields.map { (Array($0.key.split(separator: ".").map(String.init)), $0.value) })
    }

    private static func node(path: String, fields: [(parts: [String], kind: Kind)]) -> Node {
        var kind: Kind?
        var groups: [String: [(parts: [String], kind: Kind)]] = [:]
        var order: [String] = []
        for field in fields {
            guard let first = field.parts.first else {
                kind = field.kind
                continue
            }
            if groups[first] == nil { order.append(first) }
            groups[first, default: []].append((Array(field.parts.dropFirst()), field.kind))
        }
        var keys: [(name: [UInt8], node: Node)] = []
        var elements: Node?
        for name in order {
            let rest = groups[name] ?? []
            if name.hasSuffix("[]") {
                // `commits[]`: the key `commits` holds an array whose elements are read with the rest of the path.
                let key = String(name.dropLast(2))
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                let inner = node(path: "\(keyPath)[]", fields: rest)
                keys.append((Array(key.utf8), Node(path: keyPath, kind: nil, keys: [], elements: inner)))
            } else if name == "[]" {
                elements = node(path: "\(path)[]", fields: rest)
            } else {
                let keyPath = path.isEmpty ? name : "\(path).\(name)"
                keys.append((Array(name.utf8), node(path: keyPath, fields: rest)))
            }
        }
        return Node(path: path, kind: kind, keys: keys, elements: elements)
    }

    /// The wanted fields found in `document`, by path.
    public func read(_ document: [UInt8]) throws(Failure) -> [String: Value] {
        var found: [String: Value] = [:]
        let result: Result<Void, Failure> = document.withUnsafeBufferPointer { bytes in
            var scanner = Scanner(bytes: bytes)
            do throws(Failure) {
                scanner.skipWhitespace()
                try scanner.value(root, depth: 0, into: &found)
                scanner.skipWhitespace()
                guard scanner.offset == bytes.count else { throw scanner.failure("unexpected text after the document") }
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        return found
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func failure(_ reason: String) -> Failure {
            Failure(path: nil, reason: "\(reason) at byte \(offset)")
        }

        mutating func skipWhitespace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case 0x20, 0x0a, 0x0d, 0x09: offset += 1
                default: return
                }
            }
        }

        /// Reads one value; `node` says what is wanted of it (nil: nothing, only its syntax is checked).
        mutating func value(_ node: Node?, depth: Int, into found: inout [String: Value]) throws(Failure) {
            guard offset < bytes.count else { throw failure("unexpected end of the document") }
            let byte = bytes[offset]
            if let node, byte != UInt8(ascii: "n") {
                try check(node, holds: byte)
            }
            switch byte {
            case UInt8(ascii: "{"):
                try object(node, depth: depth + 1, into: &found)
            case UInt8(ascii: "["):
                try array(node?.elements, depth: depth + 1, into: &found)
            case UInt8(ascii: "\""):
                if let node, node.kind == .string {
                    found[node.path] = .string(try string())
                } else {
                    try skipString()
                }
            case UInt8(ascii: "t"):
                try literal("true")
                if let node, node.kind == .bool { found[node.path] = .bool(true) }
            case UInt8(ascii: "f"):
                try literal("false")
                if let node, node.kind == .bool { found[node.path] = .bool(false) }
            case UInt8(ascii: "n"):
                try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
                try number()
            default:
                throw failure("unexpected character")
            }
        }

        /// A wanted value of the wrong type is an error, as it is for `JSONDecoder`.
        private func check(_ node: Node, holds byte: UInt8) throws(Failure) {
            let fits: Bool = switch node.kind {
            case .string: byte == UInt8(ascii: "\"")
            case .bool: byte == UInt8(ascii: "t") || byte == UInt8(ascii: "f")
            case nil:
                if node.elements != nil { byte == UInt8(ascii: "[") } else if node.keys.isEmpty { true } else { byte == UInt8(ascii: "{") }
            }
            guard fits else {
                throw node.path.isEmpty ? failure("the document is not a JSON object") : Failure(path: node.path, reason: "unexpected value")
            }
        }

        private mutating func object(_ node: Node?, depth: Int, into found: inout [String: Value]) throws(Failure) {
            guard try opensNonEmpty(depth: depth, closer: UInt8(ascii: "}")) else { return }
            repeat {
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw failure("expected a key") }
                let child: Node?
                if let node, !node.keys.isEmpty {
                    child = try key(in: node)
                } else {
                    try skipString()
                    child = nil
                }
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw failure("expected ':'") }
                offset += 1
                skipWhitespace()
                try value(child, depth: depth, into: &found)
            } while try continues(closer: UInt8(ascii: "}"))
        }

        private mutating func array(_ elements: Node?, depth: Int, into found: inout [String: Value]) throws(Failure) {
            guard try opensNonEmpty(depth: depth, closer: UInt8(ascii: "]")) else { return }
            repeat {
                try value(elements, depth: depth, into: &found)
            } while try continues(closer: UInt8(ascii: "]"))
        }

        /// Steps into an object or array at its opening bracket: false when it is empty (and stepped over).
        private mutating func opensNonEmpty(depth: Int, closer: UInt8) throws(Failure) -> Bool {
            guard depth <= JSONFieldReader.maximumDepth else { throw failure("document nested too deeply") }
            offset += 1
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == closer else { return true }
            offset += 1
            return false
        }

        /// After a member or element: true when a ',' announces another, false when `closer` ends the container.
        private mutating func continues(closer: UInt8) throws(Failure) -> Bool {
            skipWhitespace()
            guard offset < bytes.count else { throw failure("unexpected end of the document") }
            switch bytes[offset] {
            case UInt8(ascii: ","):
                offset += 1
                skipWhitespace()
                return true
            case closer:
                offset += 1
                return false
            default:
                throw failure("expected ',' or '\(Character(Unicode.Scalar(closer)))'")
            }
        }

        /// Reads a key and finds its node; an escaped key is unescaped first.
        private mutating func key(in node: Node) throws(Failure) -> Node? {
            let start = offset + 1
            let hasEscapes = try skipString()
            if !hasEscapes {
                return node.child(named: UnsafeBufferPointer(rebasing: bytes[start ..< offset - 1]))
            }
            offset = start - 1
            let name = Array(try string().utf8)
            return name.withUnsafeBufferPointer { node.child(named: $0) }
        }

        private mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard offset + count <= bytes.count else { throw failure("unexpected end of the document") }
            for index in 0 ..< count where bytes[offset + index] != word.utf8Start[index] {
                throw failure("unexpected character")
            }
            offset += count
        }

        private mutating func number() throws(Failure) {
            if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw failure("malformed number") }
            if bytes[offset] == UInt8(ascii: "0") {
                offset += 1
            } else {
                while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
                offset += 1
                guard offset < bytes.count, isDigit(bytes[offset]) else { throw failure("malformed number") }
                while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
            }
            if offset < bytes.count, bytes[offset] | 0x20 == UInt8(ascii: "e") {
                offset += 1
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
                guard offset < bytes.count, isDigit(bytes[offset]) else { throw failure("malformed number") }
                while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
            }
        }

        private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

        /// Skips a string (the offset is at its opening quote); returns whether it held escapes.
        @discardableResult
        private mutating func skipString() throws(Failure) -> Bool {
            offset += 1
            var hasEscapes = false
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == UInt8(ascii: "\"") {
                    offset += 1
                    return hasEscapes
                }
                if byte == UInt8(ascii: "\\") {
                    hasEscapes = true
                    guard offset + 1 < bytes.count else { break }
                    switch bytes[offset + 1] {
                    case UInt8(ascii: "u"):
                        _ = try hexQuad(at: offset + 2)
                        offset += 6
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        offset += 2
                    default:
                        throw failure("invalid escape in a string")
                    }
                    continue
                }
                guard byte >= 0x20 else { throw failure("control character in a string") }
                offset += 1
            }
            throw failure("unterminated string")
        }

        /// Reads a string (the offset is at its opening quote), unescaping it.
        private mutating func string() throws(Failure) -> String {
            let start = offset + 1
            guard try skipString() else {
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< offset - 1]), as: UTF8.self)
            }
            let end = offset - 1
            var output: [UInt8] = []
            output.reserveCapacity(end - start)
            var index = start
            while index < end {
                let byte = bytes[index]
                guard byte == UInt8(ascii: "\\") else {
                    output.append(byte)
                    index += 1
                    continue
                }
                let escaped = bytes[index + 1]
                index += 2
                switch escaped {
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0c)
                case UInt8(ascii: "n"): output.append(0x0a)
                case UInt8(ascii: "r"): output.append(0x0d)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try hexQuad(at: index))
                    index += 4
                    if (0xd800 ..< 0xdc00).contains(scalar), index + 6 <= end, bytes[index] == UInt8(ascii: "\\"),
                       bytes[index + 1] == UInt8(ascii: "u") {
                        let low = UInt32(try hexQuad(at: index + 2))
                        if (0xdc00 ..< 0xe000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                            index += 6
                        }
                    }
                    // A lone surrogate becomes U+FFFD, as a lenient reader would.
                    output.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{fffd}")).utf8)
                default: output.append(escaped)
                }
            }
            return String(decoding: output, as: UTF8.self)
        }

        private func hexQuad(at index: Int) throws(Failure) -> UInt16 {
            guard index + 4 <= bytes.count else { throw failure("unterminated string") }
            var value: UInt16 = 0
            for position in index ..< index + 4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw failure("invalid \\u escape in a string")
                }
                value = value << 4 | UInt16(digit)
            }
            return value
        }
    }
}
