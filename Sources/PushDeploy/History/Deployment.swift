import Foundation

/// Where a deployment is in its life: the running phases, then one final status.
public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    case queued, fetching, building, starting, healthy, switching, watching
    case succeeded, failed, cancelled, superseded, interrupted
    case rolledBack = "rolled_back"

    /// True once nothing more will happen to the deployment.
    public var isFinished: Bool {
        switch self {
        case .succeeded, .failed, .cancelled, .superseded, .interrupted, .rolledBack: true
        default: false
        }
    }

    /// True once traffic may point at the new release; a rollback no longer cancels such a deployment.
    public var hasSwitchedTraffic: Bool {
        switch self {
        case .switching, .watching, .succeeded, .rolledBack: true
        default: false
        }
    }
}

/// Whether a deployment ships new code, goes back to a stored release, or brings a crashed or hung instance back.
public enum DeploymentKind: String, Codable, Sendable {
    case deploy, rollback
    /// Supervision restarted the same release on the same port (or flipped to the warm one: then `rollback`).
    case restart
}

/// Who or what asked for a deployment.
public enum TriggerSource: String, Codable, Sendable, CaseIterable {
    case github, gitea, gitlab, travis, manual
    /// pushdeploy itself, watching the live release: a restart or an automatic rollback.
    case supervisor
}

/// What started a deployment: the sender and what it said. Never passed to a shell.
public struct Trigger: Codable, Sendable, Equatable {
    public var source: TriggerSource
    /// The sender's delivery id (a redelivery repeats it).
    public var deliveryId: String?
    /// The full ref pushed, such as `refs/heads/main`.
    public var ref: String?
    /// The commit the sender named; nil means the head of the branch.
    public var commit: String?
    public var repository: String?
    public var pusher: String?
    public var message: String?

    public init(source: TriggerSource, deliveryId: String? = nil, ref: String? = nil, commit: String? = nil,
                repository: String? = nil, pusher: String? = nil, message: String? = nil) {
        self.source = source
        self.deliveryId = deliveryId
        self.ref = ref
        self.commit = commit
        self.repository = repository
        self.pusher = pusher
        self.message = message
    }
}

/// The start and end of one phase of a deployment.
public struct PhaseRecord: Codable, Sendable, Equatable {
    public var name: DeploymentStatus
    public var startedAt: Date
    public var endedAt: Date?

    public init(name: DeploymentStatus, startedAt: Date, endedAt: Date? = nil) {
        self.name = name
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    /// How long the phase took, or has taken so far.
    public var seconds: Double? {
        endedAt.map { $0.timeIntervalSince(startedAt) }
    }
}

/// One deployment as the history keeps it: one JSON file, rewritten at every phase.
public struct Deployment: Codable, Sendable, Identifiable, Equatable {
    public var id: Int
    public var app: String
    public var kind: DeploymentKind
    public var trigger: Trigger
    public var status: DeploymentStatus
    /// The exact commit checked out, once known.
    public var commit: String?
    /// The release version, once built (or the target of a rollback).
    public var version: String?
    public var strategy: String
    public var createdAt: Date
    public var finishedAt: Date?
    public var phases: [PhaseRecord]
    public var error: String?
    /// The deployment that replaced this one while it waited.
    public var supersededBy: Int?
    /// For a rollback: the deployment id or version asked for.
    public var rollbackTo: String?
    /// The release that was live when this deployment started.
    public var previousVersion: String?
    /// What happened beside the status, for a person: such as a push whose branch head was already live.
    public var note: String?
    /// What the guard saw at each step after the switch (each canary step, then the watch), when it watched.
    public var guardSteps: [GuardStep]?

    public init(id: Int, app: String, kind: DeploymentKind, trigger: Trigger, strategy: String, createdAt: Date = Date()) {
        self.id = id
        self.app = app
        self.kind = kind
        self.trigger = trigger
        self.status = .queued
        self.strategy = strategy
        self.createdAt = createdAt
        self.phases = [PhaseRecord(name: .queued, startedAt: createdAt)]
    }

    /// Moves to `status`, closing the open phase and opening the next one (a final status opens none).
    public mutating func enter(_ status: DeploymentStatus, at date: Date = Date()) {
        if let last = phases.indices.last, phases[last].endedAt == nil {
            phases[last].endedAt = date
        }
        self.status = status
        if status.isFinished {
            finishedAt = date
        } else {
            phases.append(PhaseRecord(name: status, startedAt: date))
        }
    }

    /// Ends the deployment with a final status and, for a failure, its reason.
    public mutating func finish(_ status: DeploymentStatus, error: String? = nil, at date: Date = Date()) {
        precondition(status.isFinished, "finish needs a final status")
        enter(status, at: date)
        if let error { self.error = error }
    }
}

extension JSONEncoder {
    /// The encoder for every JSON file and answer pushdeploy writes: snake_case keys, ISO 8601 dates with milliseconds.
    public static var pushDeploy: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(.iso8601WithMilliseconds))
        }
        return encoder
    }
}

extension JSONDecoder {
    /// The decoder matching ``JSONEncoder/pushDeploy``.
    public static var pushDeploy: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: .iso8601WithMilliseconds) {
                return date
            }
            if let date = try? Date(text, strategy: .iso8601) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}

extension FormatStyle where Self == Date.ISO8601FormatStyle {
    /// `2026-11-23T12:11:39.436Z`: every date pushdeploy writes.
    static var iso8601WithMilliseconds: Date.ISO8601FormatStyle {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    }
}

extension ParseStrategy where Self == Date.ISO8601FormatStyle {
    static var iso8601WithMilliseconds: Date.ISO8601FormatStyle {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    }
}
