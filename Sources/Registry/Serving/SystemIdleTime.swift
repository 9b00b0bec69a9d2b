import Glibc

/// The machine's idle CPU time, from the first line of `/proc/stat` (idle and iowait, all CPUs).
public enum SystemIdleTime {
    @Sendable public static func seconds() -> Double? {
        let fd = open("/proc/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parse(buffer[0..<count], ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// `cpu  user nice system idle iowait ...`: idle + iowait, in seconds.
    static func parse(_ bytes: ArraySlice<UInt8>, ticksPerSecond: Double) -> Double? {
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let fields = line.split(separator: UInt8(ascii: " "))
        guard fields.count >= 6, fields[0].elementsEqual("cpu".utf8), ticksPerSecond > 0,
              let idle = UInt64(String(decoding: fields[4], as: UTF8.self)),
              let iowait = UInt64(String(decoding: fields[5], as: UTF8.self)) else { return nil }
        return Double(idle + iowait) / ticksPerSecond
    }
}
