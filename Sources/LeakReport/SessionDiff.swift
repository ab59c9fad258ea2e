import ReportFormats
import SessionStore

/// Keys standing for `StackIdentity` of the stacks of several sessions, read from their stack trees:
/// each location's frames become identities once and each tree path is numbered once (`StackPaths`),
/// so two runs of 131k stacks of 38 frames are matched without building their 10M frames.
struct StackIdentityKeys {
    struct Key: Hashable {
        var kind: String
        /// The path's id in the numbering all sessions share; 0 for a stack without frames.
        var path: Int32
    }

    /// Each distinct location identity (a location's frames, inlined calls first), numbered.
    private var locations: [[StackIdentity.Frame]: Int32] = [:]
    private var paths: StackPaths

    init(capacity: Int) { paths = StackPaths(capacity: capacity) }

    /// One key per stack of `p`'s profile, in its order.
    mutating func keys(_ p: SessionProfile) -> [Key] {
        let profile = p.profile, catalog = p.builder.catalog
        let locationKeys: [Int32] = p.builder.locations.map { frames in
            let identity = frames.map { StackIdentity.Frame($0, in: profile) }
            if let id = locations[identity] { return id }
            let id = Int32(locations.count)
            locations[identity] = id
            return id
        }
        // A stack's frames are its locations from leaf to root, and a location's frames end with its one
        // frame that is not inlined: equal frame lists are equal location lists, so equal paths.
        let nodePaths = paths.number(catalog, locationKeys: locationKeys, distinctKeys: Set(locationKeys).count == locationKeys.count)
        return zip(p.totals, profile.stacks).map { t, s in
            Key(kind: s.kind, path: catalog.stacks[t.stackID].map { nodePaths[Int($0.leaf)] } ?? 0)
        }
    }
}

extension ProfileDiff {
    /// The diff of two sessions (loaded with or without frames), stacks matched through their stack
    /// trees. Frames are given to the first `framed` changes (nil: every change), the ones a report prints.
    public static func sessions(base: SessionProfile, new: SessionProfile, framed: Int?) -> ProfileDiff {
        var identities = StackIdentityKeys(capacity: base.builder.catalog.parents.count + new.builder.catalog.parents.count)
        let baseKeys = identities.keys(base), newKeys = identities.keys(new)
        var diff = ProfileDiff(base: base.profile, new: new.profile, baseKeys: baseKeys, newKeys: newKeys)
        for i in diff.changes.indices.prefix(framed ?? diff.changes.count) where diff.changes[i].stack.frames.isEmpty {
            let c = diff.changes[i]
            diff.changes[i].stack.frames = (c.fromBase ? base : new).frames(ofStack: c.index)
        }
        return diff
    }
}
