import Foundation
import PackagePlugin

/// Compiles every `bpf/*.bpf.c` of the package with clang (`-target bpf`, CO-RE, BTF from `-g`) and
/// embeds the objects into the target as base64 string literals (`BPFObjects.swift`), which the loader
/// opens with `bpf_object__open_mem`. Nothing compiled is committed: the objects are built from source
/// by every build. A string literal, not a `[UInt8]` array literal, because the Swift type checker
/// takes minutes over an array literal of this size.
@main
struct BPFCompile: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let bpfDir = context.package.directoryURL.appendingPathComponent("bpf")
        let files = try FileManager.default.contentsOfDirectory(atPath: bpfDir.path).sorted()
        let sources = files.filter { $0.hasSuffix(".bpf.c") }.map { bpfDir.appendingPathComponent($0) }
        // Any header change rebuilds every object.
        let headers = files.filter { $0.hasSuffix(".h") }.map { bpfDir.appendingPathComponent($0) }
        let clang = try context.tool(named: "clang").url
        let work = context.pluginWorkDirectoryURL

        var commands: [Command] = []
        var objects: [URL] = []
        for source in sources {
            let name = source.lastPathComponent.replacingOccurrences(of: ".bpf.c", with: "")
            let object = work.appendingPathComponent("\(name).bpf.o")
            objects.append(object)
            commands.append(
                .buildCommand(
                    displayName: "Compiling BPF \(source.lastPathComponent)",
                    executable: clang,
                    arguments: [
                        "-target", "bpf", "-O2", "-g", "-Wall", "-Werror",
                        // <linux/bpf.h> pulls in <asm/types.h>, which Debian keeps under the multiarch directory.
                        "-I", "/usr/include/\(Self.multiarch)", "-I", bpfDir.path,
                        // bpf_tracing.h's PT_REGS_* for uprobe programs, for the machine this builds for.
                        "-D__TARGET_ARCH_\(Self.tracingArch)",
                        "-c", source.path, "-o", object.path,
                    ],
                    inputFiles: [source] + headers,
                    outputFiles: [object]))
        }
        let swiftFile = work.appendingPathComponent("BPFObjects.swift")
        let embed = context.package.directoryURL.appendingPathComponent("tools/bpf-embed.sh")
        commands.append(
            .buildCommand(
                displayName: "Embedding BPF objects",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [embed.path, swiftFile.path] + objects.map(\.path),
                inputFiles: [embed] + objects,
                outputFiles: [swiftFile]))
        return commands
    }

    private static var tracingArch: String {
        #if arch(arm64)
            return "arm64"
        #else
            return "x86"
        #endif
    }

    private static var multiarch: String {
        #if arch(x86_64)
            return "x86_64-linux-gnu"
        #elseif arch(arm64)
            return "aarch64-linux-gnu"
        #else
            return "unknown-linux-gnu"
        #endif
    }
}
