// Model families: how the checkpoints of one architecture describe a model,
// written once per family (partitioner/src/families/<family>.cc, as vLLM
// keeps one file per model and transformers one folder).
//
// A family says
//   - which Hugging Face `model_type` values and which GGUF
//     `general.architecture` it covers;
//   - what its config.json means beyond the keys every Llama-like config
//     shares (ModelConfigFromHfJson reads those): whether q, k and v carry
//     biases, which key gives a sliding attention window;
//   - where each tensor of the model format lives in a checkpoint, and which
//     checkpoint tensors are fused: a fused tensor stacks several model
//     tensors by rows (Phi-3's qkv_proj is wq, wk, wv; its gate_up_proj is
//     w_gate, w_up) and the converters split it;
//   - how llama.cpp laid out the rotary dimensions of wq and wk in GGUF.
//
// What a model computes is carried by ModelConfig fields -- qkv_bias,
// sliding_window, rope_scaling -- which the engine consults. Nothing outside
// the family files branches on a family's name; the name is stored in the
// model file (`architecture`) for provenance and messages. Adding a family
// that computes what these fields express is one new file and one line in
// model_family.cc (docs/architecture.md, "Model families").
//
// Thread safety: the table is immutable after static initialisation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lockstep::partitioner {

// One tensor of a checkpoint and the model-format tensors it holds.
struct CheckpointTensor {
  // The name without the layer prefix for layer tensors
  // ("self_attn.qkv_proj.weight", "attn_qkv.weight").
  std::string_view name;
  // Model tensors, as ModelTensors names them within a layer ("attn/wq"),
  // stacked by rows in this order. One entry: an unfused tensor.
  std::vector<std::string_view> parts;
};

// Where a checkpoint format keeps the tensors of the model format.
struct CheckpointLayout {
  // Layer tensor names are fmt::format(layer_prefix, layer) + name.
  std::string_view layer_prefix;
  // Each model tensor of a layer is taken from the first of these that lists
  // it and is present in the checkpoint (so a family may accept both a fused
  // and an unfused form).
  std::vector<CheckpointTensor> layer_tensors;
  std::string_view embedding;   // /tok_embeddings
  std::string_view final_norm;  // /norm
  std::string_view lm_head;     // /lm_head (absent with tied embeddings)
};

// Which config.json key turns on sliding-window attention.
enum class SlidingWindowKey {
  kNone,           // the architecture has none
  kSlidingWindow,  // `sliding_window` (an integer, or null: none) -- Mistral, Phi-3
  kQwen2,          // `sliding_window` only if `use_sliding_window` is true, and then for the
                   // layers from `max_window_layers` on: lockstep refuses that form
};

struct ModelFamily {
  std::string_view name;                         // the model file's `architecture`
  std::string_view models;                       // what it covers, for docs and messages
  std::vector<std::string_view> hf_model_types;  // config.json `model_type`
  bool qkv_bias = false;                         // q, k and v projections have biases
  SlidingWindowKey sliding_window = SlidingWindowKey::kNone;
  CheckpointLayout hf;                 // Hugging Face safetensors names
  std::string_view gguf_architecture;  // GGUF `general.architecture`
  // llama.cpp's converter permuted the rows of wq and wk (and their biases)
  // of each head into the interleaved pairing its rope mode 0 uses; the
  // converter permutes them back. False: GGUF keeps rotate-half (NEOX).
  bool gguf_interleaved_rope = false;
  CheckpointLayout gguf;  // GGUF names
};

// Every family, in a fixed order (llama, qwen2, mistral, phi3).
const std::vector<const ModelFamily*>& ModelFamilies();
// nullptr if unknown.
const ModelFamily* FindFamily(std::string_view architecture);
const ModelFamily* FindFamilyByHfModelType(std::string_view model_type);
const ModelFamily* FindFamilyByGgufArchitecture(std::string_view architecture);
// "llama, qwen2, mistral, phi3", and the Hugging Face model types / GGUF
// architectures, for error messages.
std::string FamilyNames();
std::string HfModelTypeNames();
std::string GgufArchitectureNames();

// The model-format path of a layer tensor of `layout` ("/layers/3/attn/wq")
// and the checkpoint name ("model.layers.3.self_attn.q_proj.weight").
std::string CheckpointLayerTensorName(const CheckpointLayout& layout, int layer,
                                      std::string_view name);

}  // namespace lockstep::partitioner
