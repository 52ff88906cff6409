// Mistral 7B v0.1, v0.2, v0.3: Hugging Face MistralForCausalLM (transformers
// models/mistral). The Llama layout and computation plus `sliding_window`:
// v0.1 attends to the last 4096 positions only; v0.2 and v0.3 set it to null
// (full attention). llama.cpp converts Mistral to its "llama" architecture
// (no window in the metadata), so GGUF files come in through the llama
// family and run as llama.cpp runs them, with full attention.
#include "families.h"

namespace lockstep::partitioner::internal {

const ModelFamily& MistralFamily() {
  static const ModelFamily* family = new ModelFamily{
      .name = "mistral",
      .models = "Mistral 7B v0.1 (sliding window), v0.2, v0.3",
      .hf_model_types = {"mistral"},
      .qkv_bias = false,
      .sliding_window = SlidingWindowKey::kSlidingWindow,
      .hf = LlamaHfLayout(),
      .gguf_architecture = "",
      .gguf_interleaved_rope = true,
      .gguf = {},
  };
  return *family;
}

}  // namespace lockstep::partitioner::internal
