// Text corpora for language models (dataset.kind "text"): byte-level tokens over the corpus's own
// alphabet, a fixed train/validation split, and sequences of block_size tokens as samples.
//
//   vocabulary   the distinct bytes of the whole text, sorted; token id = rank (nanoGPT's
//                shakespeare_char: a character-level model for ASCII text)
//   split        the first (1 - val_fraction) of the bytes train, the rest validate
//   samples      training sample i is tokens [i*T, i*T + T) of the training part, its targets the
//                same window shifted by one: the sequences tile the text without overlap, so the
//                run's sample order (engine/dataset.hpp SampleOrder: one permutation per epoch,
//                worker r of N takes every N-th) gives workers disjoint sequences within an
//                epoch, and N workers x b sequences are one worker's N*b
//   validation   val_sequences windows (0: all) spread evenly over the validation part
//
// Features are token ids as floats (SampleShape{T, 1, 1}); labels are T targets per sample
// (Split::targets = T). The built-in corpus is the King James Bible (1611, public domain) from
// Debian's bible-kjv: 4,298,239 bytes of English prose in 73 distinct characters, printed
// by its `bible` program one verse per line. docs/engine.md, "Language models".
#pragma once
#include <cstddef>
#include <string>

#include "engine/dataset.hpp"

namespace dtsim::engine {

// The bytes of a text file, plain or gzip-compressed (read through zlib). Throws
// InputError(path, "", reason) when it cannot be read.
std::string read_text_file(const std::string& path);
// The built-in corpus: the King James Bible from Debian's bible-kjv (`bible -l1000 gen1:1-rev22:21`).
// Throws InputError("", "", reason) when the package is missing.
std::string kjv_text();
constexpr const char* kKjvProgram = "/usr/bin/bible";

struct TextStats {
  size_t bytes = 0;
  int vocab = 0;               // distinct bytes
  size_t train_sequences = 0;  // samples of the training part
  size_t val_sequences = 0;    // validation windows available (before val_sequences limits them)
};
// Checks a corpus for sequences of `block` tokens and returns its sizes. Throws
// InputError(`file`, "", reason) when it is empty, binary (a NUL byte, or more than 1% control
// characters other than tab, newline, carriage return, form feed and vertical tab), or too short
// for one sequence of block + 1 tokens in both the training and the validation part.
TextStats check_text(const std::string& text, const std::string& file, size_t block, double val_fraction);

// The dataset (validated by check_text first). `val_sequences` = 0: every validation window.
Dataset make_text_dataset(const std::string& text, const std::string& file, size_t block, double val_fraction,
                          size_t val_sequences);

}  // namespace dtsim::engine
