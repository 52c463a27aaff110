// CIFAR-10 binary reader, scikit-learn digits CSV, crop + flip augmentation.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/dataset.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_datasets_extra_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

// Record r of file f: label (r + f) % 10, pixel p of channel c = (7 * r + 3 * c + p + f) % 256.
uint8_t pixel(int f, int r, int c, int p) { return static_cast<uint8_t>((7 * r + 3 * c + p + f) % 256); }

void write_cifar(const std::string& path, int file_index, int records, size_t truncate_by = 0) {
  std::vector<uint8_t> bytes;
  for (int r = 0; r < records; ++r) {
    bytes.push_back(static_cast<uint8_t>((r + file_index) % 10));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) bytes.push_back(pixel(file_index, r, c, p));
  }
  bytes.resize(bytes.size() - truncate_by);
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), f);  // fwrite(nullptr, ...) is UB (UBSan)
  std::fclose(f);
}

void write_cifar_dir(const std::string& dir, int records = 2) {
  std::filesystem::create_directories(dir);
  for (int i = 1; i <= 5; ++i) write_cifar(dir + "/data_batch_" + std::to_string(i) + ".bin", i, records);
  write_cifar(dir + "/test_batch.bin", 0, records + 1);
}

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f);
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
}

std::string digits_row(int label, int seed) {
  std::string s;
  for (int i = 0; i < 64; ++i) s += std::to_string((i * 3 + seed) % 17) + ",";
  return s + std::to_string(label) + "\n";
}

template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return std::string(e.file()) + " | " + e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("CIFAR-10 reader decodes a tiny generated set: labels, CHW planes, scaling and normalisation") {
  test::TempDir dir;
  write_cifar_dir(dir.str(), 2);
  CHECK(cifar10_train_size(dir.str()) == 10);
  const Dataset raw = load_cifar10_dir(dir.str(), false);
  CHECK(raw.name == "cifar10");
  CHECK(raw.shape.c == 3);
  CHECK(raw.shape.h == 32);
  CHECK(raw.classes == 10);
  REQUIRE(raw.train.size() == 10);
  REQUIRE(raw.test.size() == 3);
  REQUIRE(raw.train.x.size() == 10 * 3072);
  // Training sample 2k + r comes from data_batch_(k+1), record r, in file order.
  for (int f = 1; f <= 5; ++f)
    for (int r = 0; r < 2; ++r) {
      const size_t i = static_cast<size_t>((f - 1) * 2 + r);
      CHECK(raw.train.y[i] == (r + f) % 10);
      for (int c = 0; c < 3; ++c)
        for (int p : {0, 1, 31, 32, 1023}) CHECK(raw.train.x[i * 3072 + c * 1024 + p] == pixel(f, r, c, p) / 255.0f);
    }
  CHECK(raw.test.y[2] == 2);
  CHECK(raw.test.x[2 * 3072 + 2 * 1024 + 5] == pixel(0, 2, 2, 5) / 255.0f);
  CHECK(raw.black == std::vector<float>{0, 0, 0});
  // Normalised: (x - mean) / std per channel; the augmentation's black follows.
  const Dataset norm = load_cifar10_dir(dir.str(), true);
  CHECK(norm.train.x[1024 + 7] == dtsim_test::Rel((pixel(1, 0, 1, 7) / 255.0 - 0.4822) / 0.2435).epsilon(1e-6));
  CHECK(norm.black[2] == dtsim_test::Rel(-0.4465 / 0.2616).epsilon(1e-6));
  // The archive's own folder is found inside the given directory.
  test::TempDir outer;
  write_cifar_dir(outer.str() + "/cifar-10-batches-bin", 1);
  CHECK(load_cifar10_dir(outer.str()).train.size() == 5);
}

TEST_CASE("CIFAR-10 reader rejects truncated files, missing files and CIFAR-100 records") {
  test::TempDir dir;
  write_cifar_dir(dir.str(), 2);
  write_cifar(dir.file("data_batch_3.bin"), 3, 2, 100);  // truncated
  std::string err = input_error([&] { load_cifar10_dir(dir.str()); });
  CHECK(err.find("data_batch_3.bin") != std::string::npos);
  CHECK(err.find("not a whole number of 3073-byte records") != std::string::npos);
  CHECK(input_error([&] { cifar10_train_size(dir.str()); }).find("data_batch_3.bin") != std::string::npos);

  write_cifar(dir.file("data_batch_3.bin"), 3, 2);
  std::filesystem::remove(dir.file("test_batch.bin"));
  err = input_error([&] { load_cifar10_dir(dir.str()); });
  CHECK(err.find("test_batch.bin") != std::string::npos);

  write_cifar(dir.file("test_batch.bin"), 0, 1);
  {  // a label of 10+ (e.g. a CIFAR-100 file)
    FILE* f = std::fopen(dir.file("data_batch_2.bin").c_str(), "r+b");
    REQUIRE(f);
    std::fseek(f, static_cast<long>(kCifarRecord), SEEK_SET);
    std::fputc(42, f);
    std::fclose(f);
  }
  err = input_error([&] { load_cifar10_dir(dir.str()); });
  CHECK(err.find("data_batch_2.bin") != std::string::npos);
  CHECK(err.find("record 1 has label 42") != std::string::npos);
  write_cifar(dir.file("data_batch_2.bin"), 2, 0);  // empty file
  CHECK(input_error([&] { load_cifar10_dir(dir.str()); }).find("empty") != std::string::npos);
  CHECK(input_error([&] { load_cifar10_dir(dir.str() + "/nope"); }).find("missing CIFAR-10 file") != std::string::npos);
}

TEST_CASE("digits CSV: decoding, the train/test split, and malformed rows") {
  test::TempDir dir;
  std::string text;
  for (int r = 0; r < 10; ++r) text += digits_row(r % 10, r);
  write_gz(dir.file("digits.csv.gz"), text);
  const Dataset d = load_digits_csv(dir.file("digits.csv.gz"), 0.2);
  CHECK(d.shape.c == 1);
  CHECK(d.shape.h == 8);
  CHECK(d.classes == 10);
  REQUIRE(d.train.size() == 8);
  REQUIRE(d.test.size() == 2);
  CHECK(d.train.y[3] == 3);
  CHECK(d.test.y[1] == 9);
  CHECK(d.train.x[3 * 64 + 5] == ((5 * 3 + 3) % 17) / 16.0f);
  CHECK(d.test.x[63] == ((63 * 3 + 8) % 17) / 16.0f);
  // Plain (not gzipped) works too; CRLF line ends and a missing final newline are fine.
  std::string crlf = digits_row(1, 1);
  crlf.insert(crlf.size() - 1, "\r");
  crlf += digits_row(2, 2);
  crlf.pop_back();
  {
    FILE* f = std::fopen(dir.file("plain.csv").c_str(), "wb");
    std::fwrite(crlf.data(), 1, crlf.size(), f);
    std::fclose(f);
  }
  CHECK(load_digits_csv(dir.file("plain.csv"), 0.5).train.size() == 1);

  auto bad = [&](const std::string& body, const char* expect) {
    write_gz(dir.file("bad.csv.gz"), body);
    const std::string err = input_error([&] { load_digits_csv(dir.file("bad.csv.gz")); });
    CAPTURE(err);
    CHECK(err.find(expect) != std::string::npos);
  };
  bad(digits_row(1, 0) + "1,2,3\n", "line 2: 3 values, expected 65");
  bad(digits_row(1, 0) + digits_row(12, 0), "label 12 outside 0..9");
  std::string px = digits_row(1, 0);
  px.replace(0, 1, "17");
  bad(px + digits_row(2, 0), "pixel 0 is 17");
  bad(digits_row(1, 0) + "a" + digits_row(2, 0), "line 2");
  bad(digits_row(1, 0), "too few");
  CHECK(input_error([&] { load_digits_csv(dir.file("missing.csv.gz")); }).find("python3-sklearn") != std::string::npos);
}

TEST_CASE("digits: the Debian python3-sklearn file, when installed") {
  if (!std::filesystem::exists(kDigitsDefaultPath)) {
    MESSAGE("python3-sklearn not installed: skipped");
    return;
  }
  const Dataset d = load_digits_csv(kDigitsDefaultPath);
  CHECK(d.train.size() + d.test.size() == 1797);
  CHECK(d.train.size() == 1438);
}

TEST_CASE("crop + flip augmentation: deterministic per (seed, worker, step), a shifted or mirrored image") {
  const SampleShape s{2, 6, 5};
  Batch b;
  b.shape = s;
  b.y = {0, 1, 2, 3, 4, 5, 6, 7};
  b.x.resize(8 * s.size());
  for (size_t i = 0; i < b.x.size(); ++i) b.x[i] = static_cast<float>(i % 997) + 1.0f;  // no zeros
  const Batch orig = b;
  Batch a1 = orig, a2 = orig, a3 = orig, a4 = orig;
  const std::vector<float> black{-1.0f, -2.0f};
  augment_crop_flip(a1, black, 7, 3, 11, 2);
  augment_crop_flip(a2, black, 7, 3, 11, 2);
  augment_crop_flip(a3, black, 7, 4, 11, 2);  // another worker
  augment_crop_flip(a4, black, 7, 3, 12, 2);  // another step
  CHECK(a1.x == a2.x);
  CHECK(a1.x != a3.x);
  CHECK(a1.x != a4.x);
  CHECK(a1.y == orig.y);
  // Every output sample is the original shifted by (oy, ox) in [-2, 2]^2, maybe mirrored, with the
  // channel's black outside: find that transform by brute force.
  int flips = 0, shifted = 0;
  for (size_t i = 0; i < 8; ++i) {
    bool found = false;
    for (int flip = 0; flip < 2 && !found; ++flip)
      for (int oy = -2; oy <= 2 && !found; ++oy)
        for (int ox = -2; ox <= 2 && !found; ++ox) {
          bool ok = true;
          for (int c = 0; c < 2 && ok; ++c)
            for (int y = 0; y < 6 && ok; ++y)
              for (int x = 0; x < 5 && ok; ++x) {
                const int sy = y + oy, sx = (flip ? 4 - x : x) + ox;
                const float want = sy >= 0 && sy < 6 && sx >= 0 && sx < 5 ? orig.x[i * 60 + c * 30 + sy * 5 + sx]
                                                                         : black[static_cast<size_t>(c)];
                ok = a1.x[i * 60 + c * 30 + y * 5 + x] == want;
              }
          if (ok) {
            found = true;
            flips += flip;
            shifted += oy != 0 || ox != 0;
          }
        }
    CHECK(found);
  }
  CHECK(flips > 0);  // 8 samples: some flipped, some shifted (fixed seed)
  CHECK(flips < 8);
  CHECK(shifted > 0);
  Batch z = orig;
  augment_crop_flip(z, {}, 7, 3, 11, 0);  // no padding: flips only
  for (size_t i = 0; i < z.x.size(); ++i) CHECK(z.x[i] != 0.0f);
  CHECK_THROWS_AS(augment_crop_flip(z, {1.0f}, 7, 3, 11, 2), RuntimeError);  // fill size
}

}  // namespace test_datasets_extra_cpp
