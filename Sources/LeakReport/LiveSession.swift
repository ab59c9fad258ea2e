import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// What the live view shows of a session a running collector writes, read afresh at each refresh.
public struct LiveSession {
    public var model: LiveView.Model
    /// The collection has ended (the session says how), or its collector is gone.
    public var finished: Bool
    /// How often the collector flushes, for the view's refresh.
    public var intervalNs: UInt64
    /// How long reading the session into the model took.
    public var loadNs: UInt64

    /// Reads the session at `path` into the live view's model (stacks, their series, the header's facts).
    public static func read(_ path: String, request: ProfileRequest, sort: LiveView.Sort) throws(SessionError) -> LiveSession {
        let started = DispatchTime.now().uptimeNanoseconds
        let reader = try SessionReader(path: path)
        var request = request
        request.series = true
        let sp = try SessionProfile.load(reader, request)
        let info = sp.info
        // Total outstanding per interval, from the interval rows (every kind the view shows).
        let kinds = request.kinds
        let total = sp.intervals.map { row in
            row.outstanding.reduce(UInt64(0)) { sum, e in kinds?.contains(e.key) ?? true ? sum &+ e.value.bytes : sum }
        }
        let peak = try reader.peaks()[.all]?.bytes
        var model = LiveView.Model(
            profile: sp.profile, pid: info.pid ?? 0, command: info.command.joined(separator: " "), rssBytes: sp.intervals.last?.rssBytes,
            lostEvents: sp.lostEvents, elapsedNs: sp.profile.durationNs, peakBytes: peak, totalSeries: total, sort: sort)
        model.outstandingBytes = sp.profile.stacks.reduce(UInt64(0)) { $0 &+ $1.inUseBytes }
        let finished = info.end != nil || Self.abandoned(info)
        // While it runs, the clock runs: the time since the start, not since the last flush.
        if info.end == nil { model.elapsedNs = SessionProfile.relative(Self.monotonicNow(), info.startMonotonicNs) }
        return LiveSession(
            model: model, finished: finished, intervalNs: UInt64(max(info.intervalMs, 10)) * 1_000_000,
            loadNs: DispatchTime.now().uptimeNanoseconds - started)
    }

    static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// A session without an end whose process is gone and whose collector stopped flushing: its
    /// collector died, so nothing more will come.
    static func abandoned(_ info: SessionInfo) -> Bool {
        guard let pid = info.pid, kill(pid, 0) != 0, errno == ESRCH else { return false }
        let nowNs = monotonicNow()
        let last = info.lastFlushNs ?? info.startMonotonicNs
        return nowNs > last && nowNs - last > max(3 * UInt64(max(info.intervalMs, 10)) * 1_000_000, 2_000_000_000)
    }
}
