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
    public static func read(_ path: String, request: ProfileRequest, sort: LiveView.Sort, named: Int = 300) throws(SessionError) -> LiveSession {
        let started = DispatchTime.now().uptimeNanoseconds
        let reader = try SessionReader(path: path)
        var request = request
        request.series = true
        request.frames = false
        var sp = try SessionProfile.load(reader, request)
        // A screen shows a few dozen stacks: name the first `named` by each order a key can choose, so
        // a re-sort before the next refresh still has names.
        let growth = sp.profile.stacks.map { GrowthScore($0.series).score }
        let bytes = sp.profile.stacks.map(\.inUseBytes), blocks = sp.profile.stacks.map(\.inUseBlocks)
        sp.fillFrames(top: named) { bytes[$0] }
        sp.fillFrames(top: named) { blocks[$0] }
        sp.fillFrames(top: named) { UInt64(max(0, min(growth[$0], 1e18))) }
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
