#include "common/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <shared_mutex>
#include <sstream>

#include "common/error.hpp"

namespace dtsim::io {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  // A FIFO would block the open (and be consumed by a first read: `<(...)` cannot be read twice), a
  // device like /dev/zero never ends: only regular files. A missing one is the open's error.
  if (const std::string why = not_a_file(path); why == "is a directory")
    throw InputError(path, "", "is a directory, expected a file");
  else if (!why.empty() && why != "does not exist")
    throw InputError(path, "", why + ": give a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path, "", "read error");
  return ss.str();
}

namespace {
// Held shared by every atomic_write for its whole length, and for good by a process about to die
// of a signal (end_writes_for_exit): it dies between two writes, never inside one.
std::shared_timed_mutex& writes() {
  static auto* m = new std::shared_timed_mutex;  // never destroyed: a dying process may still call in
  return *m;
}
}  // namespace

// A write that hangs (a stuck file system) does not keep the process alive: 2 s at most.
void end_writes_for_exit() { (void)writes().try_lock_for(std::chrono::seconds(2)); }

void atomic_write(const std::string& path, std::string_view content) {
  const std::shared_lock<std::shared_timed_mutex> writing(writes());
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeError("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw RuntimeError("cannot write " + tmp + ": " + why);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw RuntimeError("cannot rename " + tmp + " to " + path + ": " + why);
  }
}

std::string npy_float32(const float* data, size_t n) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  // magic(6) + version(2) + len(2) + header + '\n', padded to a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out;
  out.reserve(10 + header.size() + n * 4);
  out.append("\x93NUMPY", 6);
  out.push_back('\x01');
  out.push_back('\x00');
  const uint16_t hl = static_cast<uint16_t>(header.size());
  out.push_back(static_cast<char>(hl & 0xff));
  out.push_back(static_cast<char>(hl >> 8));
  out += header;
  static_assert(sizeof(float) == 4);
  out.append(reinterpret_cast<const char*>(data), n * 4);  // x86-64 is little-endian
  return out;
}

std::string dirname(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

std::string resolve_relative(const std::string& base_dir, const std::string& path) {
  // Absolute, so that config.resolved.json (which records these) loads again from anywhere
  // (dtsim run --resume DIR, a sweep's runs).
  const fs::path p(path);
  if (p.is_absolute()) return path;
  std::error_code ec;
  const fs::path joined = fs::path(base_dir) / p;
  const fs::path abs = fs::absolute(joined, ec);
  return (ec ? joined : abs).lexically_normal().string();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string not_a_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_regular_file(st)) return "";
  if (!fs::exists(st)) return "does not exist";
  if (fs::is_directory(st)) return "is a directory";
  return "is not a regular file (a pipe, FIFO, device or socket)";
}

}  // namespace dtsim::io
