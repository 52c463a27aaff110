// Datasets held in memory as float32 features (sample-major, C*H*W per sample, scaled to [0,1]
// or standardised) and int32 labels, plus the deterministic sample order shared by all workers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dtsim::engine {

struct SampleShape {
  int c = 1, h = 1, w = 1;
  size_t size() const { return static_cast<size_t>(c) * h * w; }
};

struct Split {
  std::vector<float> x;    // n * shape.size()
  std::vector<int32_t> y;  // n * targets
  // Labels per sample: 1 for a classifier; a language model's sequence sample has one target
  // token per position (engine/text.hpp).
  size_t targets = 1;
  size_t size() const { return y.size() / targets; }
};

struct Dataset {
  std::string name;
  SampleShape shape;
  int classes = 0;
  Split train, test;
  // Per-channel feature value of a black (0) pixel after preprocessing: what augmentation pads
  // with (empty: 0 for every channel).
  std::vector<float> black;
};

// Loaders. Every failure (missing file, bad magic, truncated data, mismatched counts) throws
// dtsim::InputError(file, "", reason); the config layer re-throws it with the JSON path.
// IDX files may be gzipped (.gz) or raw; both are read through zlib.
Dataset load_idx_dataset(const std::string& name, const std::string& train_images, const std::string& train_labels,
                         const std::string& test_images, const std::string& test_labels);
// Fashion-MNIST / MNIST layout: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in `dir`.
Dataset load_mnist_dir(const std::string& name, const std::string& dir);
// CIFAR-10, binary version: data_batch_1.bin .. data_batch_5.bin and test_batch.bin in `dir` (or in
// dir/cifar-10-batches-bin, as the archive unpacks). Each file is a whole number of 3073-byte
// records: label (0..9), then the 32x32 red, green and blue planes (row-major: already CHW).
// Pixels are scaled to [0, 1] and, with `normalize`, standardised per channel with CIFAR-10's
// training-set mean (0.4914, 0.4822, 0.4465) and standard deviation (0.2470, 0.2435, 0.2616).
Dataset load_cifar10_dir(const std::string& dir, bool normalize = true);
// The directory that holds the CIFAR-10 files (dir or dir/cifar-10-batches-bin); throws
// InputError naming the first missing file.
std::string cifar10_dir(const std::string& dir);
// Training records of a CIFAR-10 directory, from the file sizes alone (validated: whole records).
size_t cifar10_train_size(const std::string& dir);
constexpr size_t kCifarRecord = 3073;

// scikit-learn's digits (UCI optdigits, 1797 8x8 images, 17 grey levels): a gzipped (or plain)
// CSV of 65 integers per row, 64 pixels in 0..16 then the label 0..9, no header (Debian
// python3-sklearn ships it as .../sklearn/datasets/data/digits.csv.gz). Pixels are scaled to
// [0, 1]; the first round((1 - test_fraction) * rows) rows train, the rest test.
Dataset load_digits_csv(const std::string& file, double test_fraction = 0.2);
constexpr const char* kDigitsDefaultPath = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

// Deterministic synthetic classification data from the seed: Gaussian clusters around
// per-class centres in `features` dimensions. Learnable but not trivial.
Dataset make_synthetic(size_t train, size_t test, int features, int classes, uint64_t seed);

// The sample order of a run. The training stream is the concatenation of one permutation of the
// training set per epoch, each drawn from the seed alone. Worker i of N with batch b takes stream
// positions i, i+N, i+2N, ...; its k-th minibatch is the next b of those. So the N workers' k-th
// minibatches together are exactly stream positions [k*N*b, (k+1)*N*b): the k-th minibatch of one
// worker with batch N*b. Asynchronous workers never share a sample within an epoch.
class SampleOrder {
 public:
  SampleOrder(size_t train_size, uint64_t seed);
  size_t train_size() const { return n_; }
  // Training-set index at global stream position p (epoch p / n).
  size_t at(uint64_t p);
  // Indices of worker `rank`'s `k`-th minibatch of size `b` among `workers` workers.
  void worker_batch(int rank, int workers, uint64_t k, int b, std::vector<size_t>& out);
  // Stream positions [begin, begin+count) (for a single-stream consumer).
  void range(uint64_t begin, size_t count, std::vector<size_t>& out);

 private:
  const std::vector<uint32_t>& epoch(uint64_t e);
  size_t n_;
  uint64_t seed_;
  std::map<uint64_t, std::vector<uint32_t>> cache_;  // a few recent epochs
};

// A contiguous minibatch (features + labels) gathered from a split.
struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;  // size() * targets
  SampleShape shape;
  size_t targets = 1;  // labels per sample (Split::targets)
  size_t size() const { return y.size() / targets; }
};
void gather(const Split& split, const SampleShape& shape, const std::vector<size_t>& indices, Batch& out);

// The standard CIFAR augmentation, in place: each sample is padded by `pad` pixels on every side
// with `black` (per channel; empty = 0), cropped back to its size at a random offset, and
// mirrored left-right with probability 1/2 (torchvision's RandomCrop(padding) +
// RandomHorizontalFlip). Sample i of the batch draws from Rng(seed, Augment, {worker, step, i}):
// the result depends on (seed, worker, step) only, never on event order.
void augment_crop_flip(Batch& batch, const std::vector<float>& black, uint64_t seed, uint64_t worker, uint64_t step,
                       int pad = 4);

}  // namespace dtsim::engine
