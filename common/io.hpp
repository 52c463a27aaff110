// File helpers. Every result file is written atomically: a temporary file in the same directory,
// fsync, then rename(2), so a reader never sees a half-written file.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace dtsim::io {

// Reads a whole file; throws InputError(path, "", reason) when it cannot.
std::string read_file(const std::string& path);
// Writes `content` to `path` atomically (creates parent directories). Throws RuntimeError.
void atomic_write(const std::string& path, std::string_view content);
// For a process about to die of a signal: waits for the atomic_write calls in progress in any
// thread to finish (2 s at most) and blocks every later one for good, so no `<file>.tmp.<pid>` is
// left behind.
void end_writes_for_exit();
// A 1-D little-endian float32 NumPy .npy image of `n` floats (format 1.0).
std::string npy_float32(const float* data, size_t n);
// Parent directory of a path ("." when none); joins a relative path onto a base directory.
std::string dirname(const std::string& path);
std::string resolve_relative(const std::string& base_dir, const std::string& path);
bool file_exists(const std::string& path);
// Why `path` is not a regular file one can read (through symlinks): "does not exist", "is a
// directory", "is not a regular file (a pipe, FIFO, device or socket)"; "" when it is one.
std::string not_a_file(const std::string& path);

}  // namespace dtsim::io
