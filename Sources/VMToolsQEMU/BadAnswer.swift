import VMToolsCore

/// An answer from a running VM's peer that vmtools cannot use: a number out
/// of range, a reply of the wrong shape, text that is not JSON. The guest
/// (its agent) and, under `vmps -a`, another user's process choose these
/// answers, so each is reported as one line naming the VM and the peer,
/// and the rest of the output goes on (vmps(1), vminfo(1)).
public struct BadAnswer: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Peer: String, Sendable {
        case guestAgent = "the guest agent"
        case qmp = "QEMU's QMP monitor"
    }

    public var peer: Peer
    public var why: String

    public init(_ peer: Peer, _ why: String) {
        self.peer = peer
        self.why = why
    }

    public var description: String { "\(peer.rawValue) gave an answer vmtools cannot use: \(why)" }

    /// How the socket and QMP clients begin the message of an error that
    /// is the peer's answer (too long, without end, not JSON) rather than
    /// its silence: those errors stay `VMToolsError`s for the other callers.
    static let prefix = "an answer"

    /// The answer the socket or QMP error `e` is about, or nil for silence, a closed connection, a refusal.
    init?(_ peer: Peer, _ e: VMToolsError) {
        guard e.message.hasPrefix(Self.prefix) else { return nil }
        self.init(peer, e.message)
    }

    /// A value to quote in `why`: short, whatever the peer sent.
    static func quote(_ value: JSON) -> String {
        let text = value.serialized(pretty: false)
        return text.count > 40 ? String(text.prefix(40)) + "…" : text
    }
}

extension QemuProcess {
    /// What the VM's guest agent and QMP monitor answered that could not be
    /// used, once asked (`askingGuestAgents`, `LiveRates`).
    public var badAnswers: [BadAnswer] {
        var list = rates?.badAnswers ?? []
        if case .badAnswer(let b)? = guestAgentStatus { list.append(b) }
        return list
    }
}
