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
  std::vector<int32_t> y;  // n
  size_t size() const { return y.size(); }
};

struct Dataset {
  std::string name;
  SampleShape shape;
  int classes = 0;
  Split train, test;
};

// Loaders. Every failure (missing file, bad magic, truncated data, mismatched counts) throws
// dtsim::InputError(file, "", reason); the config layer re-throws it with the JSON path.
// IDX files may be gzipped (.gz) or raw; both are read through zlib.
Dataset load_idx_dataset(const std::string& name, const std::string& train_images, const std::string& train_labels,
                         const std::string& test_images, const std::string& test_labels);
// Fashion-MNIST / MNIST layout: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in `dir`.
Dataset load_mnist_dir(const std::string& name, const std::string& dir);
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
  std::vector<int32_t> y;
  SampleShape shape;
  size_t size() const { return y.size(); }
};
void gather(const Split& split, const SampleShape& shape, const std::vector<size_t>& indices, Batch& out);

}  // namespace dtsim::engine
