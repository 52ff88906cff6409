// Qwen2 and Qwen2.5: Hugging Face Qwen2ForCausalLM (transformers
// models/qwen2) and llama.cpp's "qwen2" architecture. The Llama layout plus
// biases on the q, k and v projections (always: Qwen2Attention builds them
// with bias=True, o_proj without). Tied embeddings (Qwen2.5 0.5B-3B) and
// yarn rope scaling come from the common config keys. `use_sliding_window`
// (windows on the layers from `max_window_layers` on) is refused: no
// released Qwen2.5 checkpoint turns it on.
#include "families.h"

namespace lockstep::partitioner::internal {

const ModelFamily& Qwen2Family() {
  static const ModelFamily* family = [] {
    auto* f = new ModelFamily{
        .name = "qwen2",
        .models = "Qwen2, Qwen2.5",
        .hf_model_types = {"qwen2"},
        .qkv_bias = true,
        .sliding_window = SlidingWindowKey::kQwen2,
        .hf = LlamaHfLayout(),
        .gguf_architecture = "qwen2",
        .gguf_interleaved_rope = false,  // llama.cpp: LLAMA_ROPE_TYPE_NEOX, not permuted
        .gguf = LlamaGgufLayout(),
    };
    f->hf.layer_tensors.insert(f->hf.layer_tensors.end(), {{"self_attn.q_proj.bias", {"attn/bq"}},
                                                           {"self_attn.k_proj.bias", {"attn/bk"}},
                                                           {"self_attn.v_proj.bias", {"attn/bv"}}});
    f->gguf.layer_tensors.insert(
        f->gguf.layer_tensors.end(),
        {{"attn_q.bias", {"attn/bq"}}, {"attn_k.bias", {"attn/bk"}}, {"attn_v.bias", {"attn/bv"}}});
    return f;
  }();
  return *family;
}

}  // namespace lockstep::partitioner::internal
