// Llama 2, 3, 3.1, 3.2, 3.3 (and TinyLlama, llama2.c exports): Hugging Face
// LlamaForCausalLM (transformers models/llama) and llama.cpp's "llama"
// architecture. Rope scaling (Llama 3.1's "llama3", linear, dynamic, yarn)
// is read by the common config reader; tied embeddings (Llama 3.2 1B/3B)
// are the common tie_word_embeddings. LlamaConfig's attention_bias (biases
// on q, k, v and o) and mlp_bias are refused there: no published Llama uses
// them.
#include "families.h"

namespace lockstep::partitioner::internal {

CheckpointLayout LlamaHfLayout() {
  return {
      .layer_prefix = "model.layers.{}.",
      .layer_tensors = {{"input_layernorm.weight", {"attn_norm"}},
                        {"self_attn.q_proj.weight", {"attn/wq"}},
                        {"self_attn.k_proj.weight", {"attn/wk"}},
                        {"self_attn.v_proj.weight", {"attn/wv"}},
                        {"self_attn.o_proj.weight", {"attn/wo"}},
                        {"post_attention_layernorm.weight", {"ffn_norm"}},
                        {"mlp.gate_proj.weight", {"ffn/w_gate"}},
                        {"mlp.up_proj.weight", {"ffn/w_up"}},
                        {"mlp.down_proj.weight", {"ffn/w_down"}}},
      .embedding = "model.embed_tokens.weight",
      .final_norm = "model.norm.weight",
      .lm_head = "lm_head.weight",
  };
}

CheckpointLayout LlamaGgufLayout() {
  return {
      .layer_prefix = "blk.{}.",
      .layer_tensors = {{"attn_norm.weight", {"attn_norm"}},
                        {"attn_q.weight", {"attn/wq"}},
                        {"attn_k.weight", {"attn/wk"}},
                        {"attn_v.weight", {"attn/wv"}},
                        {"attn_output.weight", {"attn/wo"}},
                        {"ffn_norm.weight", {"ffn_norm"}},
                        {"ffn_gate.weight", {"ffn/w_gate"}},
                        {"ffn_up.weight", {"ffn/w_up"}},
                        {"ffn_down.weight", {"ffn/w_down"}}},
      .embedding = "token_embd.weight",
      .final_norm = "output_norm.weight",
      .lm_head = "output.weight",
  };
}

const ModelFamily& LlamaFamily() {
  static const ModelFamily* family = new ModelFamily{
      .name = "llama",
      .models = "Llama 2, Llama 3, 3.1, 3.2, 3.3, TinyLlama",
      .hf_model_types = {"llama"},
      .qkv_bias = false,
      .sliding_window = SlidingWindowKey::kNone,
      .hf = LlamaHfLayout(),
      .gguf_architecture = "llama",
      // convert_hf_to_gguf.py LlamaModel.permute: llama.cpp's rope mode 0
      // rotates neighbours (2j, 2j+1).
      .gguf_interleaved_rope = true,
      .gguf = LlamaGgufLayout(),
  };
  return *family;
}

}  // namespace lockstep::partitioner::internal
