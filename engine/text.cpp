#include "engine/text.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "common/error.hpp"

namespace dtsim::engine {

std::string read_text_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!f) throw InputError(path, "", "cannot open the text file");
  std::string out;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    const int got = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (got < 0) {
      int code = 0;
      const std::string why = gzerror(f, &code);
      gzclose(f);
      throw InputError(path, "", "cannot read the text file: " + why);
    }
    if (got == 0) break;
    out.append(buf.data(), static_cast<size_t>(got));
    if (out.size() > (size_t{1} << 32)) {
      gzclose(f);
      throw InputError(path, "", "the text is larger than 4 GiB");
    }
  }
  // A gzip file cut short reads as its first part, without error, until gzclose (zlib.h: Z_BUF_ERROR
  // "if the last read ended in the middle of a gzip stream").
  if (gzclose(f) == Z_BUF_ERROR) throw InputError(path, "", "the gzip file is truncated (unexpected end of its stream)");
  return out;
}

namespace {

// The program's output. It runs in a process group of its own: a Ctrl-C at the terminal (SIGINT to
// the foreground group) is dtsim's to handle (a stopped run, exit 130), and killed the reader
// instead ("bible-kjv failed", exit 2) when it came while the corpus loaded. Default signal
// dispositions and an empty mask, whatever dtsim blocks.
std::string run_kjv(int& status) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw InputError("", "", std::string("cannot run ") + kKjvProgram + ": pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_init(&at);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &defaults);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  // One verse per line (-l1000: no verse is that long), the whole book from Genesis 1:1.
  char* argv[] = {const_cast<char*>(kKjvProgram), const_cast<char*>("-l1000"), const_cast<char*>("gen1:1-rev22:21"), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, kKjvProgram, &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw InputError("", "", std::string("cannot run ") + kKjvProgram + ": " + std::strerror(rc));
  }
  std::string out;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    const ssize_t got = ::read(fds[0], buf.data(), buf.size());
    if (got > 0) out.append(buf.data(), static_cast<size_t>(got));
    else if (got == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

}  // namespace

std::string kjv_text() {
  if (access(kKjvProgram, X_OK) != 0)
    throw InputError("", "", std::string("the built-in corpus (the King James Bible) needs ") + kKjvProgram +
                                 " from the Debian package bible-kjv (tools/install-deps.sh installs it); or give "
                                 "dataset.path, a text file of your own");
  // Read once per process: a sweep's validation loads every cell's config (the program takes ~0.1 s).
  static std::mutex mu;
  static std::string corpus;
  std::lock_guard<std::mutex> lock(mu);
  if (!corpus.empty()) return corpus;
  int status = 0;
  std::string out = run_kjv(status);
  if (status != 0 || out.size() < (size_t{1} << 20))
    throw InputError("", "", std::string(kKjvProgram) + " failed (exit status " + std::to_string(status) + ", " +
                                 std::to_string(out.size()) + " bytes): reinstall the Debian package bible-kjv");
  corpus = std::move(out);
  return corpus;
}

namespace {

size_t split_point(size_t bytes, double val_fraction) {
  return bytes - static_cast<size_t>(std::llround(static_cast<double>(bytes) * val_fraction));
}

}  // namespace

TextStats check_text(const std::string& text, const std::string& file, size_t block, double val_fraction) {
  if (text.empty()) throw InputError(file, "", "the text file is empty");
  size_t control = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0)
      throw InputError(file, "", "not text: a NUL byte at offset " + std::to_string(i) + " (a binary file?)");
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7F) ++control;
  }
  if (control * 100 > text.size())
    throw InputError(file, "", "not text: " + std::to_string(control) + " of its " + std::to_string(text.size()) +
                                   " bytes are control characters (a binary file?)");
  bool seen[256] = {};
  TextStats st;
  st.bytes = text.size();
  for (unsigned char c : text)
    if (!seen[c]) {
      seen[c] = true;
      ++st.vocab;
    }
  const size_t cut = split_point(text.size(), val_fraction);
  const size_t train = cut, val = text.size() - cut;
  if (train < block + 1 || val < block + 1) {
    // in double: a val_fraction of 1e-300 needs ~1e302 bytes (it printed "0.000000" and "about 0")
    const double need = std::ceil(static_cast<double>(block + 1) / std::min(val_fraction, 1.0 - val_fraction));
    char nums[96];
    std::snprintf(nums, sizeof nums, need < 1e15 ? "(val_fraction %g), about %.0f" : "(val_fraction %g), about %.3g", val_fraction, need);
    throw InputError(file, "", "holds " + std::to_string(text.size()) + " bytes, shorter than one block: sequences of "
                                   "block_size " + std::to_string(block) + " need " + std::to_string(block + 1) +
                                   " bytes in both the training and the validation part " + nums +
                                   " bytes in all; use a longer text" + (val_fraction < 0.5 ? ", a larger val_fraction" : "") +
                                   " or a smaller block_size");
  }
  st.train_sequences = (train - 1) / block;
  st.val_sequences = (val - 1) / block;
  if (st.train_sequences > (size_t{1} << 31))
    throw InputError(file, "", "too many training sequences; use a larger block_size");
  return st;
}

Dataset make_text_dataset(const std::string& text, const std::string& file, size_t block, double val_fraction,
                          size_t val_sequences) {
  const TextStats st = check_text(text, file, block, val_fraction);
  int id[256];
  int next = 0;
  bool seen[256] = {};
  for (unsigned char c : text) seen[c] = true;
  for (int c = 0; c < 256; ++c) id[c] = seen[c] ? next++ : -1;

  Dataset d;
  d.name = "text";
  d.shape = SampleShape{static_cast<int>(block), 1, 1};
  d.classes = st.vocab;
  const size_t cut = split_point(text.size(), val_fraction);
  // Window w of a part starting at byte `base`: inputs base + w*T ..., targets one further.
  auto add = [&](Split& s, size_t base, size_t w) {
    const size_t start = base + w * block;
    for (size_t t = 0; t < block; ++t) {
      s.x.push_back(static_cast<float>(id[static_cast<unsigned char>(text[start + t])]));
      s.y.push_back(id[static_cast<unsigned char>(text[start + t + 1])]);
    }
  };
  d.train.targets = d.test.targets = block;
  d.train.x.reserve(st.train_sequences * block);
  d.train.y.reserve(st.train_sequences * block);
  for (size_t w = 0; w < st.train_sequences; ++w) add(d.train, 0, w);
  const size_t k = val_sequences == 0 ? st.val_sequences : std::min(val_sequences, st.val_sequences);
  for (size_t j = 0; j < k; ++j) add(d.test, cut, j * st.val_sequences / k);  // evenly spread
  return d;
}

}  // namespace dtsim::engine
