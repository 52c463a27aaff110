// Error types shared by every layer.
//
// InputError  — the user gave us something wrong (config, platform, dataset, CLI). Exit code 2.
//               Always carries the file, the JSON path (dotted, e.g. "platform.workers.count")
//               and a one-line reason, so the CLI can print `error: <file>: <path>: <reason>`.
// RuntimeError — something failed while running a valid experiment. Exit code 1.
#pragma once
#include <stdexcept>
#include <string>

namespace dtsim {

// Appends byte `c` as the four characters \xNN (error messages quote what a user's file held).
inline void append_hex_escape(std::string& out, unsigned char c) {
  const char* hex = "0123456789abcdef";
  out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
}

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string path, std::string reason)
      : std::runtime_error(format(file, path, reason)),
        file_(std::move(file)), path_(std::move(path)), reason_(std::move(reason)) {}
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  // One line: a control character a user's value carried into the message (a line break in a
  // name, a terminal escape) is written as \xNN; other bytes, UTF-8 included, as they are.
  static std::string format(const std::string& f, const std::string& p, const std::string& r) {
    std::string s;
    if (!f.empty()) s += f + ": ";
    if (!p.empty()) s += p + ": ";
    s += r;
    std::string out;
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c >= 0x20 && c != 0x7f) out += ch;
      else append_hex_escape(out, c);
    }
    return out;
  }
  std::string file_, path_, reason_;
};

class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dtsim
