import Foundation
import Synchronization

/// SIGINT and SIGTERM as a counter the collection loops poll. The handler only stores to an atomic,
/// which is async-signal-safe; nothing else happens in signal context.
public enum StopSignals {
    private static let received = Atomic<Int32>(0)
    private static let lastSignal = Atomic<Int32>(0)

    /// Installs the handlers. Call once, before starting a collection.
    public static func install() {
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                StopSignals.lastSignal.store(sig, ordering: .relaxed)
                StopSignals.received.add(1, ordering: .relaxed)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
    }

    /// How many stop signals arrived so far.
    public static var count: Int32 { received.load(ordering: .relaxed) }

    /// The most recent stop signal, or 0.
    public static var last: Int32 { lastSignal.load(ordering: .relaxed) }

    /// For tests and for a `--duration` that expires: behave as if a stop signal arrived.
    public static func request() { received.add(1, ordering: .relaxed) }
}
