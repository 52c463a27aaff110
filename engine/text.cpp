#include "engine/text.hpp"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cmath>
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
  gzclose(f);
  return out;
}

std::string kjv_text() {
  if (access(kKjvProgram, X_OK) != 0)
    throw InputError("", "", std::string("the built-in corpus (the King James Bible) needs ") + kKjvProgram +
                                 " from the Debian package bible-kjv (tools/install-deps.sh installs it); or give "
                                 "dataset.path, a text file of your own");
  // One verse per line (-l1000: no verse is that long), the whole book from Genesis 1:1.
  FILE* p = popen((std::string(kKjvProgram) + " -l1000 gen1:1-rev22:21 2>/dev/null").c_str(), "r");
  if (!p) throw InputError("", "", std::string("cannot run ") + kKjvProgram);
  std::string out;
  std::array<char, 1 << 16> buf{};
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), got);
  const int status = pclose(p);
  if (status != 0 || out.size() < (size_t{1} << 20))
    throw InputError("", "", std::string(kKjvProgram) + " failed (exit status " + std::to_string(status) + ", " +
                                 std::to_string(out.size()) + " bytes): reinstall the Debian package bible-kjv");
  return out;
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
    const size_t need = static_cast<size_t>(
        std::ceil(static_cast<double>(block + 1) / std::min(val_fraction, 1.0 - val_fraction)));
    throw InputError(file, "", "holds " + std::to_string(text.size()) + " bytes, shorter than one block: sequences of "
                                   "block_size " + std::to_string(block) + " need " + std::to_string(block + 1) +
                                   " bytes in both the training and the validation part (val_fraction " +
                                   std::to_string(val_fraction) + "), about " + std::to_string(need) +
                                   " bytes in all; use a longer text or a smaller block_size");
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
