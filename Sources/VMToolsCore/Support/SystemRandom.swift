import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Bytes from the kernel's generator (`getrandom(2)`, the pool behind /dev/urandom).
package enum SystemRandom {
    package static func bytes(_ count: Int) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = buf.withUnsafeMutableBytes { csystem_getrandom($0.baseAddress! + filled, count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw VMToolsError(.failure, nil, "cannot read random bytes from the kernel: \(FileSystem.errnoMessage())")
            }
            filled += n
        }
        return buf
    }
}
