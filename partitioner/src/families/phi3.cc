// Phi-3 and Phi-3.5 mini (and Phi-3 medium): Hugging Face Phi3ForCausalLM
// (transformers models/phi3) and llama.cpp's "phi3" architecture. A Llama
// computation with fused projections -- qkv_proj stacks q, k, v by rows,
// gate_up_proj stacks gate then up (Phi3MLP: gate, up = chunk(2)) -- which the
// converters split; `sliding_window` (2047 for Phi-3-mini-4k, larger than the
// context for the 128k models); and the long-context rope scaling "longrope"
// ("su" in older configs) with the top-level original_max_position_embeddings.
// llama.cpp keeps the fused tensors (attn_qkv, ffn_up of 2 x intermediate
// rows) and rotate-half pairing; some phi3 GGUFs carry attn_q/k/v unfused.
// partial_rotary_factor (Phi-4-mini) is refused by the common reader.
#include "families.h"

namespace lockstep::partitioner::internal {

const ModelFamily& Phi3Family() {
  static const ModelFamily* family = new ModelFamily{
      .name = "phi3",
      .models = "Phi-3-mini, Phi-3.5-mini, Phi-3-medium",
      .hf_model_types = {"phi3"},
      .qkv_bias = false,
      .sliding_window = SlidingWindowKey::kSlidingWindow,
      .hf = {.layer_prefix = "model.layers.{}.",
             .layer_tensors = {{"input_layernorm.weight", {"attn_norm"}},
                               {"self_attn.qkv_proj.weight", {"attn/wq", "attn/wk", "attn/wv"}},
                               {"self_attn.o_proj.weight", {"attn/wo"}},
                               {"post_attention_layernorm.weight", {"ffn_norm"}},
                               {"mlp.gate_up_proj.weight", {"ffn/w_gate", "ffn/w_up"}},
                               {"mlp.down_proj.weight", {"ffn/w_down"}}},
             .embedding = "model.embed_tokens.weight",
             .final_norm = "model.norm.weight",
             .lm_head = "lm_head.weight"},
      .gguf_architecture = "phi3",
      .gguf_interleaved_rope = false,  // LLAMA_ROPE_TYPE_NEOX
      .gguf = {.layer_prefix = "blk.{}.",
               .layer_tensors = {{"attn_norm.weight", {"attn_norm"}},
                                 {"attn_qkv.weight", {"attn/wq", "attn/wk", "attn/wv"}},
                                 {"attn_q.weight", {"attn/wq"}},
                                 {"attn_k.weight", {"attn/wk"}},
                                 {"attn_v.weight", {"attn/wv"}},
                                 {"attn_output.weight", {"attn/wo"}},
                                 {"ffn_norm.weight", {"ffn_norm"}},
                                 {"ffn_up.weight", {"ffn/w_gate", "ffn/w_up"}},
                                 {"ffn_down.weight", {"ffn/w_down"}}},
               .embedding = "token_embd.weight",
               .final_norm = "output_norm.weight",
               .lm_head = "output.weight"},
  };
  return *family;
}

}  // namespace lockstep::partitioner::internal
