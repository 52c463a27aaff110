// common/io.hpp: atomic_write never leaves a temporary file behind when its process is killed by
// a signal (tools/dtsim/signals.cpp ends the writes in progress before it dies).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "common/error.hpp"
#include "common/io.hpp"

namespace test_io_cpp {

namespace fs = std::filesystem;

TEST_CASE("io: a process that ends its writes for exit dies between two writes, never inside one") {
  const fs::path dir = fs::temp_directory_path() / ("dtsim-io-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string content(32u << 20, 'x');  // 32 MB: each write and fsync takes a while
  for (int round = 0; round < 5; ++round) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::thread([&] {
        for (;;) dtsim::io::atomic_write((dir / "out.bin").string(), content);
      }).detach();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + 13 * round));
      dtsim::io::end_writes_for_exit();  // what dtsim's signal thread does before it dies
      ::_exit(0);                        // every thread ends here
    }
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    for (const auto& e : fs::directory_iterator(dir)) {
      CAPTURE(e.path().string());
      CHECK(e.path().filename() == "out.bin");  // no out.bin.tmp.<pid>
    }
    if (fs::exists(dir / "out.bin")) CHECK(fs::file_size(dir / "out.bin") == content.size());
  }
  fs::remove_all(dir);
}

// A FIFO blocked read_file's open (forever, ignoring SIGTERM at times); /dev/zero never ended (a
// model.path symlinked to it grew dtsim to 21 GB): only regular files are read.
TEST_CASE("io: read_file refuses FIFOs and devices (also through a symlink) without opening them") {
  const fs::path dir = fs::temp_directory_path() / ("dtsim-io-special-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  fs::create_symlink("/dev/zero", dir / "zero.onnx");
  for (const fs::path& p : {dir / "fifo", dir / "zero.onnx", fs::path("/dev/null")}) {
    CAPTURE(p);
    try {
      (void)dtsim::io::read_file(p.string());
      FAIL("read a special file");
    } catch (const dtsim::InputError& e) {
      CHECK(std::string(e.what()).find("is not a regular file") != std::string::npos);
    }
  }
  CHECK_THROWS_AS((void)dtsim::io::read_file((dir / "missing").string()), dtsim::InputError);
  fs::remove_all(dir);
}

}  // namespace test_io_cpp
