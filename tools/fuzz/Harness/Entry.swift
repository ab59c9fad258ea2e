import Glibc

/// One libFuzzer binary for every decoder of input the collector does not control; LEAKFUZZ_TARGET
/// picks which one an execution feeds (tools/fuzz.sh runs each in turn with its own corpus).
/// A target returns normally for every input, valid or not: a thrown error is the expected answer to
/// garbage, and anything else (a trap, an ASan report, a leak) is a finding.
enum FuzzTarget: String, CaseIterable {
    case ring, livetable, proc, blobs, session, sessionedit, kernel, uprobe, elf

    var run: (UnsafeRawBufferPointer) -> Void {
        switch self {
        case .ring: return RingTarget.run
        case .livetable: return LiveTableTarget.run
        case .proc: return ProcTarget.run
        case .blobs: return BlobTarget.run
        case .session: return SessionTarget.run
        case .sessionedit: return SessionEditTarget.run
        case .kernel: return KernelTarget.run
        case .uprobe: return UprobeTarget.run
        case .elf: return ElfTarget.run
        }
    }

    static let selected: FuzzTarget = {
        let name = getenv("LEAKFUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let t = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            fputs("leakfuzz: set LEAKFUZZ_TARGET to one of: \(names)\n", stderr)
            exit(2)
        }
        return t
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// A scratch file in memory (/dev/shm) holding one input, for parsers that read a path.
enum Scratch {
    static let directory: String = {
        var dir = "/dev/shm/leakfuzz.\(getpid())"
        if mkdir(dir, 0o700) != 0 {
            // A machine without /dev/shm: the temporary directory, on disk.
            dir = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/leakfuzz.\(getpid())"
            guard mkdir(dir, 0o700) == 0 else { fatalError("leakfuzz: cannot create \(dir): \(String(cString: strerror(errno)))") }
        }
        atexit { Scratch.removeAll() }
        return dir
    }()

    static func write(_ bytes: UnsafeRawBufferPointer, name: String) -> String {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("leakfuzz: cannot create \(path): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { fatalError("leakfuzz: cannot write \(path)") }
            done += n
        }
        close(fd)
        return path
    }

    static func removeAll() {
        guard let d = opendir(directory) else { return }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink("\(directory)/\(name)") }
        }
        closedir(d)
        rmdir(directory)
    }
}
