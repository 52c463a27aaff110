// The text dataset (engine/text.hpp): vocabulary, split, sequence tiling and targets, the sample
// order rules for sequences, bad input, gzip, and the built-in corpus (skipped, exit 77, without
// Debian's bible-kjv).
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/dataset.hpp"
#include "engine/text.hpp"
#include "helpers.hpp"
#include "test_cuda_common.hpp"  // running_one_test_case (the exit-77 skip rule)

namespace test_gpt_text_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

std::string prose(size_t bytes) {
  const std::string s = "In the beginning was a small corpus, and the corpus was read by a model. ";
  std::string out;
  while (out.size() < bytes) out += s;
  out.resize(bytes);
  return out;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

std::string error_of(const std::string& text, size_t block, double val = 0.1) {
  try {
    check_text(text, "corpus.txt", block, val);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("text: byte vocabulary, 90/10 split, sequences tile the text and targets are shifted by one") {
  const std::string text = prose(1000);
  const size_t block = 16;
  const Dataset d = make_text_dataset(text, "corpus.txt", block, 0.1, 0);
  std::set<unsigned char> chars(text.begin(), text.end());
  CHECK(d.classes == static_cast<int>(chars.size()));
  CHECK(d.shape.c == 16);
  CHECK(d.shape.h == 1);
  CHECK(d.train.targets == block);
  CHECK(d.test.targets == block);
  // 900 training bytes -> (900 - 1) / 16 = 56 sequences; 100 validation bytes -> 6 windows.
  CHECK(d.train.size() == 56);
  CHECK(d.test.size() == 6);
  CHECK(d.train.x.size() == 56 * block);
  // Ids are ranks in the sorted alphabet.
  std::vector<unsigned char> alphabet(chars.begin(), chars.end());
  auto id = [&](char c) { return static_cast<int>(std::lower_bound(alphabet.begin(), alphabet.end(), static_cast<unsigned char>(c)) - alphabet.begin()); };
  for (size_t s : {size_t{0}, size_t{13}, size_t{55}})
    for (size_t t = 0; t < block; ++t) {
      CHECK(d.train.x[s * block + t] == static_cast<float>(id(text[s * block + t])));
      CHECK(d.train.y[s * block + t] == id(text[s * block + t + 1]));
    }
  for (size_t t = 0; t < block; ++t) CHECK(d.test.x[t] == static_cast<float>(id(text[900 + t])));
  // val_sequences picks evenly spread windows.
  const Dataset v3 = make_text_dataset(text, "corpus.txt", block, 0.1, 3);
  REQUIRE(v3.test.size() == 3);
  for (size_t j = 0; j < 3; ++j)
    CHECK(v3.test.x[j * block] == static_cast<float>(id(text[900 + (j * 6 / 3) * block])));
  CHECK(make_text_dataset(text, "corpus.txt", block, 0.1, 100).test.size() == 6);
}

TEST_CASE("text: sequences follow the sample order rules (disjoint per epoch, N workers x b = one worker x N*b)") {
  const Dataset d = make_text_dataset(prose(20000), "corpus.txt", 32, 0.1, 0);
  SampleOrder order(d.train.size(), 9);
  const int N = 4, b = 3;
  std::vector<size_t> idx;
  Batch one, part;
  std::set<size_t> seen;
  const uint64_t steps = d.train.size() / (N * b);
  for (uint64_t k = 0; k < steps; ++k) {
    order.range(k * N * b, static_cast<size_t>(N * b), idx);
    std::multiset<size_t> big(idx.begin(), idx.end()), small;
    for (int r = 0; r < N; ++r) {
      order.worker_batch(r, N, k, b, idx);
      for (size_t i : idx) {
        small.insert(i);
        CHECK(seen.insert(i).second);  // no sequence twice within the epoch
      }
      gather(d.train, d.shape, idx, part);
      CHECK(part.size() == static_cast<size_t>(b));
      CHECK(part.targets == 32);
      CHECK(part.y.size() == static_cast<size_t>(b) * 32);
      for (size_t j = 0; j < idx.size(); ++j)
        for (size_t t = 0; t < 32; ++t) CHECK(part.y[j * 32 + t] == d.train.y[idx[j] * 32 + t]);
    }
    CHECK(big == small);
  }
}

TEST_CASE("text: empty, binary, too short and block_size larger than the corpus are input errors") {
  CHECK(error_of("", 8).find("corpus.txt: the text file is empty") != std::string::npos);
  std::string nul = prose(500);
  nul[123] = '\0';
  CHECK(error_of(nul, 8).find("a NUL byte at offset 123") != std::string::npos);
  std::string ctrl = prose(500);
  for (size_t i = 0; i < 20; ++i) ctrl[i * 20] = '\x01';
  CHECK(error_of(ctrl, 8).find("control characters") != std::string::npos);
  CHECK(error_of(prose(100), 8) == "");  // 90 + 10 bytes: one 9-token window each
  const std::string short_err = error_of(prose(60), 8);
  CHECK(short_err.find("shorter than one block") != std::string::npos);
  CHECK(short_err.find("block_size 8") != std::string::npos);
  CHECK(error_of(prose(5000), 4096).find("block_size 4096") != std::string::npos);
  CHECK(error_of("tab\tand\r\nnewlines\fare text " + prose(300), 8) == "");
  CHECK(error_of(std::string("caf\xc3\xa9 ") + prose(300), 8) == "");  // UTF-8 bytes are tokens like any
}

TEST_CASE("text: read_text_file reads plain and gzip files and names a missing one") {
  test::TempDir dir;
  const std::string text = prose(3000);
  write(dir.file("a.txt"), text);
  CHECK(read_text_file(dir.file("a.txt")) == text);
  gzFile gz = gzopen(dir.file("a.txt.gz").c_str(), "wb");
  REQUIRE(gz);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  CHECK(read_text_file(dir.file("a.txt.gz")) == text);
  // cut short: it read as its first part, silently (gzclose reports it)
  std::string gz_bytes;
  {
    std::ifstream in(dir.file("a.txt.gz"), std::ios::binary);
    gz_bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write(dir.file("cut.txt.gz"), gz_bytes.substr(0, gz_bytes.size() / 2));
  try {
    read_text_file(dir.file("cut.txt.gz"));
    FAIL("a truncated gzip file was read");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("the gzip file is truncated") != std::string::npos);
  }
  try {
    read_text_file(dir.file("missing.txt"));
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("missing.txt") != std::string::npos);
  }
}

TEST_CASE("text: the built-in corpus is the King James Bible from bible-kjv, 4298239 bytes, 73 characters") {
  if (access(kKjvProgram, X_OK) != 0) {
    if (test::running_one_test_case()) {
      std::printf("SKIPPED (exit 77): %s missing (Debian package bible-kjv; tools/install-deps.sh)\n", kKjvProgram);
      std::fflush(stdout);
      std::_Exit(77);
    }
    MESSAGE("skipped: bible-kjv not installed");
    return;
  }
  const std::string kjv = kjv_text();
  CHECK(kjv.size() == 4298239);
  CHECK(kjv.find("In the beginning God created the heaven and the earth.") != std::string::npos);
  CHECK(kjv.find("The grace of our Lord Jesus Christ be with you all. Amen.") != std::string::npos);
  const TextStats st = check_text(kjv, "kjv", 128, 0.1);
  CHECK(st.vocab == 73);
  CHECK(st.train_sequences == (4298239 - 429824 - 1) / 128);
}

}  // namespace test_gpt_text_cpp
