/// What makes two stacks of different runs the same stack: their symbolized frames and kind. Never
/// addresses or ids, which differ between runs (ASLR, the order stacks were first seen).
public struct StackIdentity: Hashable, Sendable {
    public struct Frame: Hashable, Sendable {
        public var function: String?
        public var file: String?
        public var line: Int?
        public var inlined: Bool
        /// The module's file name (not its path, which may differ between machines).
        public var module: String?
        /// For a frame without a function name only: its offset into the module's file, which stays
        /// the same from run to run of the same binary.
        public var moduleOffset: UInt64?

        public init(_ f: ProfileFrame, in p: Profile) {
            let m = p.module(of: f)
            let named = f.function.map { !$0.isEmpty } ?? false
            function = f.function
            file = f.file
            line = f.line
            inlined = f.inlined
            module = m.map { FrameNames.basename($0.path) }
            moduleOffset = named ? nil : m.flatMap { FrameNames.moduleOffset(f, $0) }
        }
    }

    public var kind: String
    public var frames: [Frame]

    public init(_ s: ProfileStack, in p: Profile) {
        kind = s.kind
        frames = s.frames.map { Frame($0, in: p) }
    }
}
