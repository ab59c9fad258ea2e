import Foundation
import KernelSession
import ReportFormats
import SessionStore
import Vocabulary

/// Which outstanding allocations a report leaves out of its totals, as LeakSanitizer and valgrind do:
/// built-in rules for memory the C and C++ runtimes keep on purpose until exit, and user patterns in
/// LeakSanitizer's `leak:PATTERN` form. Suppressed allocations are still counted, on their own line.
public struct Suppressions: Sendable {
    /// A rule and the name reports show for it: a stack matches when its innermost frame satisfies
    /// `innermost`, some frame satisfies each of `through`, and every frame satisfies `only` (each part
    /// optional). Rules of this shape are decided for every stack of a session in one pass over its
    /// stack tree, so a report over 131k stacks never builds their frame lists.
    public struct Rule: Sendable {
        public let name: String
        let innermost: (@Sendable (FrameRow) -> Bool)?
        let through: [@Sendable (FrameRow) -> Bool]
        let only: (@Sendable (FrameRow) -> Bool)?

        init(
            name: String, innermost: (@Sendable (FrameRow) -> Bool)? = nil, through: [@Sendable (FrameRow) -> Bool] = [],
            only: (@Sendable (FrameRow) -> Bool)? = nil
        ) {
            self.name = name
            self.innermost = innermost
            self.through = through
            self.only = only
        }
    }

    public let rules: [Rule]

    public init(builtins: Bool = true, patterns: [String] = []) {
        var rules = builtins ? Self.builtin : []
        for p in patterns {
            rules.append(Rule(name: "leak:\(p)", through: [{ f in [f.function, f.file, f.module].contains { $0?.contains(p) ?? false } }]))
        }
        self.rules = rules
    }

    /// Decides the rules for the stacks of one session.
    public final class Matcher {
        private let catalog: StackCatalog
        private let rules: [Rule]
        /// A rule condition's answer per stack-tree node and per location, extended as the catalog grows.
        private struct Decided {
            var nodes: [Bool] = []
            var locations: [Bool] = []

            /// Extends the answers to the catalog as it stands now, in place (only what it added is decided).
            mutating func extend(_ test: (FrameRow) -> Bool, every: Bool, in catalog: StackCatalog) {
                catalog.decide(test, every: every, nodes: &nodes, locations: &locations)
            }
        }
        /// Per rule: per `through` condition, and for `only`, computed on first use.
        private var through: [[Decided]]
        private var only: [Decided]
        /// Per rule: `innermost` of each location (a stack's innermost frame is its leaf's location's
        /// first), decided once per location rather than once per stack: -1 not yet, else 0 or 1.
        private var innermost: [[Int8]]

        init(_ rules: [Rule], _ catalog: StackCatalog) {
            self.rules = rules
            self.catalog = catalog
            through = rules.map { Array(repeating: Decided(), count: $0.through.count) }
            only = Array(repeating: Decided(), count: rules.count)
            innermost = Array(repeating: [], count: rules.count)
        }

        /// The name of the first rule that matches a user stack with frames, if any.
        public func match(_ id: SessionStackID) -> String? {
            catalog.stacks[id].flatMap(match)
        }

        /// `match(_:)` for a stack already looked up in the catalog.
        public func match(_ s: StackCatalog.Stack) -> String? {
            guard s.origin == .user, s.leaf != 0 else { return nil }
            let leaf = Int(s.leaf)
            let location = Int(catalog.nodeLocations[leaf])
            let innermostFrames = catalog.locationFrames[location]
            guard !innermostFrames.isEmpty else { return nil }
            for (i, r) in rules.enumerated() {
                if let test = r.innermost {
                    if innermost[i].count <= location {
                        innermost[i] += [Int8](repeating: -1, count: catalog.locationFrames.count - innermost[i].count)
                    }
                    if innermost[i][location] < 0 { innermost[i][location] = test(innermostFrames[0]) ? 1 : 0 }
                    if innermost[i][location] == 0 { continue }
                }
                // A catalog that grew since (a live view's) has new nodes to decide: only those are.
                for (j, test) in r.through.enumerated() where through[i][j].nodes.count <= leaf {
                    through[i][j].extend(test, every: false, in: catalog)
                }
                guard through[i].allSatisfy({ $0.nodes[leaf] }) else { continue }
                if let test = r.only {
                    if only[i].nodes.count <= leaf { only[i].extend(test, every: true, in: catalog) }
                    guard only[i].nodes[leaf] else { continue }
                }
                return r.name
            }
            return nil
        }
    }

    public func matcher(for catalog: StackCatalog) -> Matcher { Matcher(rules, catalog) }

    /// The module's file name (not through URL, which stats the path: a rule tests it for every stack).
    private static func module(_ f: FrameRow) -> String { f.module.map(FrameNames.basename) ?? "" }

    /// The compiler's runtimes (`libclang_rt.*`: the sanitizers') count too: ASan's start-up keeps the
    /// buffer of a failed `dlsym` it makes while looking for optional hooks.
    private static let runtimeLibraries = ["libc.so", "libstdc++.so", "libgcc_s.so", "libm.so", "ld-linux", "ld.so", "libclang_rt."]

    /// Memory glibc and libstdc++ allocate once and keep on purpose (valgrind calls it "still reachable").
    public static let builtin: [Rule] = [
        // The dynamic loader's own bookkeeping: thread TLS blocks and their DTVs (kept with glibc's
        // cached thread stacks), link maps and dlopen's lookup tables.
        Rule(name: "dynamic loader (TLS, link maps)", innermost: { module($0).hasPrefix("ld-linux") || module($0).hasPrefix("ld.so") }),
        // A FILE's buffer, allocated at its first use and released only by fclose.
        Rule(name: "stdio buffers", innermost: { $0.function == "_IO_file_doallocate" }),
        // Run-once state of the runtime libraries, allocated by their initializers before main (the
        // libstdc++ exception emergency pool): no frame outside the runtime libraries at all.
        Rule(
            name: "runtime library initializers", through: [{ $0.function == "_dl_init" }],
            only: { f in runtimeLibraries.contains { module(f).hasPrefix($0) } }),
        // The same run-once state linked into the executable itself (gcc's driver links libstdc++
        // statically, with its 72 KiB exception pool): allocated by the executable's static initializers,
        // which libc runs from __libc_start_main before it calls main.
        Rule(
            name: "static initializers (before main)", through: [{ $0.function == "__libc_start_main" }],
            only: { f in f.function != "__libc_start_call_main" && f.function != "main" }),
    ]

    /// Reads a suppressions file: one `leak:PATTERN` per line, `#` comments and blank lines ignored.
    public static func patterns(fromFile path: String) throws(ValueParsers.Invalid) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValueParsers.Invalid(description: "cannot read suppressions file \(path)")
        }
        var out: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.hasPrefix("leak:"), line.count > 5 else {
                throw ValueParsers.Invalid(description: "\(path):\(i + 1): expected leak:PATTERN, found '\(line)'")
            }
            out.append(String(line.dropFirst(5)))
        }
        return out
    }
}
