// llama2.c checkpoints (karpathy/llama2.c, export.py and run.c / runq.c).
//
// Legacy export ("version 0"): a header of 7 int32 (dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means the classifier is not shared with the embedding), then f32 tensors:
// tok_embeddings, every layer's attention_norm, wq, wk, wv, wo, ffn_norm,
// w1 (gate), w2 (down), w3 (up) -- each kind for all layers in turn -- the
// final norm, two RoPE tables of seq_len * head_size / 2 floats (unused),
// and the classifier if not shared.
//
// Versioned exports: a 256-byte header: uint32 magic 0x616b3432 ("ak42"),
// int32 version, the 7 int32 above (vocab_size positive), uint8 shared
// classifier flag and, for version 2, int32 group_size (unaligned, byte 37).
//   version 1: f32 tensors: attention norms, ffn norms, final norm,
//     tok_embeddings, wq, wk, wv, wo, w1, w2, w3 (per kind, all layers),
//     classifier if not shared.
//   version 2: the norms in f32 as above, then each weight matrix of the
//     version-1 order as int8 values followed by its f32 group scales.
//
// Weights follow Meta's layout: wq/wk rows pair up interleaved under RoPE.
// Hyper-parameters the header does not carry take llama2.c's values:
// rope_theta 10000, rms_norm_eps 1e-5, BOS 1, EOS 2.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <functional>

#include "checkpoint.h"

namespace lockstep::runtime {
namespace {

using partitioner::ModelConfig;
using partitioner::TensorSpec;

constexpr uint32_t kMagic = 0x616b3432;  // "ak42"
constexpr uint64_t kVersionedHeaderBytes = 256;

struct Header {
  int version = 0;  // 0: legacy
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  bool shared_classifier = true;
  int32_t group_size = 0;  // version 2
};

std::string Describe(const Header& h) {
  return fmt::format(
      "dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}", h.dim,
      h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
}

Result<Header> ReadHeader(const InputFile& file) {
  Header h;
  uint32_t magic = 0;
  if (file.size() < 28) {
    return DataLoss("{}: truncated: {} bytes, too short for a llama2.c header", file.path(),
                    file.size());
  }
  LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(0, 4, &magic, "the header"));
  std::array<int32_t, 7> fields;
  if (magic == kMagic) {
    if (file.size() < kVersionedHeaderBytes) {
      return DataLoss("{}: truncated: {} bytes, shorter than the 256-byte llama2.c header",
                      file.path(), file.size());
    }
    std::array<uint8_t, kVersionedHeaderBytes> raw;
    LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(0, raw.size(), raw.data(), "the header"));
    int32_t version = 0;
    std::memcpy(&version, raw.data() + 4, 4);
    if (version != 1 && version != 2) {
      return InvalidArgument(
          "{}: llama2.c export version {} is not supported (versions 0 (legacy), 1 and 2 are)",
          file.path(), version);
    }
    h.version = version;
    std::memcpy(fields.data(), raw.data() + 8, sizeof(fields));
    h.shared_classifier = raw[36] != 0;
    if (version == 2) std::memcpy(&h.group_size, raw.data() + 37, 4);
  } else {
    LOCKSTEP_RETURN_IF_ERROR(file.ReadAt(0, sizeof(fields), fields.data(), "the header"));
  }
  h.dim = fields[0];
  h.hidden_dim = fields[1];
  h.n_layers = fields[2];
  h.n_heads = fields[3];
  h.n_kv_heads = fields[4];
  h.vocab_size = fields[5];
  h.seq_len = fields[6];
  if (h.version == 0) {
    h.shared_classifier = h.vocab_size > 0;
    if (h.vocab_size < 0 && h.vocab_size != INT32_MIN) h.vocab_size = -h.vocab_size;
  }
  // A file that is not a llama2.c checkpoint fails here or on its size.
  const bool sane = h.dim > 0 && h.hidden_dim > 0 && h.n_layers > 0 && h.n_heads > 0 &&
                    h.n_kv_heads > 0 && h.vocab_size > 0 && h.seq_len > 0 &&
                    h.dim % h.n_heads == 0 && h.n_heads % h.n_kv_heads == 0 &&
                    (h.dim / h.n_heads) % 2 == 0 && h.dim <= (1 << 20) &&
                    h.hidden_dim <= (1 << 22) && h.n_layers <= 4096 && h.vocab_size <= (1 << 24) &&
                    h.seq_len <= (1 << 24);
  if (!sane) {
    return InvalidArgument(
        "{}: not a llama2.c checkpoint{}: implausible header {} (expected positive sizes, dim a "
        "multiple of n_heads, n_heads a multiple of n_kv_heads)",
        file.path(), h.version == 0 ? " (no 'ak42' magic, read as the legacy export)" : "",
        Describe(h));
  }
  if (h.version == 2 && (h.group_size <= 0 || h.dim % h.group_size != 0)) {
    return InvalidArgument(
        "{}: llama2.c version 2 header has group_size {}, which must divide dim {}", file.path(),
        h.group_size, h.dim);
  }
  return h;
}

// Lays out the tensors of the file in order: `add` places one tensor (its
// model path, or "" for data that is skipped) and advances the offset.
class Layout {
 public:
  Layout(Checkpoint* ckpt, const InputFile* file, uint64_t offset, int32_t group_size)
      : ckpt_(ckpt), file_(file), offset_(offset), group_size_(group_size) {}

  // A tensor of f32 values (or a skipped block of floats if path is empty).
  void AddF32(const std::string& path, const std::string& name, std::vector<int64_t> shape) {
    Add(path, name, std::move(shape), SourceEncoding::kF32);
  }
  void AddQ8(const std::string& path, const std::string& name, std::vector<int64_t> shape) {
    Add(path, name, std::move(shape), SourceEncoding::kGroupQ8);
  }
  uint64_t offset() const { return offset_; }

 private:
  void Add(const std::string& path, const std::string& name, std::vector<int64_t> shape,
           SourceEncoding encoding) {
    SourceTensor t;
    t.name = name;
    t.file = file_;
    t.encoding = encoding;
    t.shape = std::move(shape);
    t.offset = offset_;
    const uint64_t elements = static_cast<uint64_t>(t.elements());
    if (encoding == SourceEncoding::kGroupQ8) {
      t.group_size = group_size_;
      t.scale_offset = offset_ + elements;
      offset_ += elements + elements / static_cast<uint64_t>(group_size_) * 4;
    } else {
      offset_ += elements * 4;
    }
    if (!path.empty()) ckpt_->tensors[path] = std::move(t);
  }

  Checkpoint* ckpt_;
  const InputFile* file_;
  uint64_t offset_;
  int32_t group_size_;
};

}  // namespace

Result<Checkpoint> OpenLlama2cCheckpoint(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(InputFile opened, InputFile::Open(path));
  Checkpoint ckpt;
  ckpt.source = path;
  ckpt.rope_layout = RopeLayout::kInterleaved;
  ckpt.files.push_back(std::make_unique<InputFile>(std::move(opened)));
  const InputFile* file = ckpt.files.back().get();
  LOCKSTEP_ASSIGN_OR_RETURN(Header h, ReadHeader(*file));
  ckpt.config_source = fmt::format("the llama2.c header of {} ({})", path, Describe(h));

  ModelConfig& c = ckpt.config;
  const size_t slash = path.find_last_of('/');
  c.name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_layers = h.n_layers;
  c.num_heads = h.n_heads;
  c.num_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = h.seq_len;
  c.tie_word_embeddings = h.shared_classifier;
  c.bos_token_id = h.vocab_size > 1 ? 1 : -1;
  c.eos_token_id = h.vocab_size > 2 ? 2 : -1;
  if (Status valid = c.Validate(); !valid.ok()) return valid.WithContext(ckpt.config_source);

  const int64_t dim = h.dim, hidden = h.hidden_dim, vocab = h.vocab_size;
  const int64_t kv_dim = int64_t{h.n_kv_heads} * c.head_dim;
  const int layers = h.n_layers;
  auto layer_path = [](int l, const char* name) { return partitioner::LayerTensorPath(l, name); };
  auto meta = [](int l, const char* name) { return fmt::format("layers.{}.{}", l, name); };
  const std::string embedding(partitioner::kEmbeddingPath), norm(partitioner::kFinalNormPath),
      lm_head(partitioner::kLmHeadPath);

  // The weight matrices in llama2.c's order (shared by versions 1 and 2).
  struct Matrix {
    const char* path;
    const char* name;
    int64_t rows, cols;
  };
  const Matrix kMatrices[] = {{"attn/wq", "attention.wq.weight", dim, dim},
                              {"attn/wk", "attention.wk.weight", kv_dim, dim},
                              {"attn/wv", "attention.wv.weight", kv_dim, dim},
                              {"attn/wo", "attention.wo.weight", dim, dim},
                              {"ffn/w_gate", "feed_forward.w1.weight", hidden, dim},
                              {"ffn/w_down", "feed_forward.w2.weight", dim, hidden},
                              {"ffn/w_up", "feed_forward.w3.weight", hidden, dim}};

  uint64_t end = 0;
  if (h.version == 0) {
    Layout layout(&ckpt, file, 28, 0);
    layout.AddF32(embedding, "tok_embeddings.weight", {vocab, dim});
    auto per_layer = [&](const char* path, const char* name, std::vector<int64_t> shape) {
      for (int l = 0; l < layers; ++l) layout.AddF32(layer_path(l, path), meta(l, name), shape);
    };
    per_layer("attn_norm", "attention_norm.weight", {dim});
    for (int m = 0; m < 4; ++m) {
      per_layer(kMatrices[m].path, kMatrices[m].name, {kMatrices[m].rows, kMatrices[m].cols});
    }
    per_layer("ffn_norm", "ffn_norm.weight", {dim});
    for (int m = 4; m < 7; ++m) {
      per_layer(kMatrices[m].path, kMatrices[m].name, {kMatrices[m].rows, kMatrices[m].cols});
    }
    layout.AddF32(norm, "norm.weight", {dim});
    const int64_t table = int64_t{h.seq_len} * (c.head_dim / 2);
    layout.AddF32("", "freq_cis_real", {table});
    layout.AddF32("", "freq_cis_imag", {table});
    if (!h.shared_classifier) layout.AddF32(lm_head, "output.weight", {vocab, dim});
    end = layout.offset();
  } else {
    Layout layout(&ckpt, file, kVersionedHeaderBytes, h.group_size);
    for (int l = 0; l < layers; ++l) {
      layout.AddF32(layer_path(l, "attn_norm"), meta(l, "attention_norm.weight"), {dim});
    }
    for (int l = 0; l < layers; ++l) {
      layout.AddF32(layer_path(l, "ffn_norm"), meta(l, "ffn_norm.weight"), {dim});
    }
    layout.AddF32(norm, "norm.weight", {dim});
    auto add = [&](const std::string& p, const std::string& name, std::vector<int64_t> shape) {
      if (h.version == 1) {
        layout.AddF32(p, name, std::move(shape));
      } else {
        layout.AddQ8(p, name, std::move(shape));
      }
    };
    add(embedding, "tok_embeddings.weight", {vocab, dim});
    for (const Matrix& m : kMatrices) {
      for (int l = 0; l < layers; ++l)
        add(layer_path(l, m.path), meta(l, m.name), {m.rows, m.cols});
    }
    if (!h.shared_classifier) add(lm_head, "output.weight", {vocab, dim});
    end = layout.offset();
  }
  if (h.version == 2) {
    for (const auto& [p, t] : ckpt.tensors) {
      if (t.encoding == SourceEncoding::kGroupQ8 && t.elements() % h.group_size != 0) {
        return InvalidArgument("{}: tensor '{}' has {} elements, not a multiple of group_size {}",
                               path, t.name, t.elements(), h.group_size);
      }
    }
  }
  if (file->size() < end) {
    return DataLoss("{}: truncated: {} implies {} bytes, the file has {}", path, ckpt.config_source,
                    end, file->size());
  }
  if (file->size() > end) {
    return InvalidArgument(
        "{}: the file has {} bytes but {} implies {}: not a llama2.c checkpoint of export version "
        "{}",
        path, file->size(), ckpt.config_source, end, h.version);
  }
  return ckpt;
}

}  // namespace lockstep::runtime
