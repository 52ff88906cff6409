"""Independent float64 references of the model families lockstep runs, one
module per family (llama, qwen2, mistral, phi3), each written from the
published architecture -- the papers and Hugging Face transformers'
modeling_<family>.py as the public description -- and reading the
checkpoint as Hugging Face stores it (hf_io.py), never lockstep's files or
code. rope.py holds the rotary embeddings and rope scaling types;
generation.py greedy decoding with a KV cache."""

from . import llama, mistral, phi3, qwen2  # noqa: F401

ARCHITECTURES = {"llama": llama.LlamaForCausalLM, "qwen2": qwen2.Qwen2ForCausalLM,
                 "mistral": mistral.MistralForCausalLM, "phi3": phi3.Phi3ForCausalLM}


def load(config, tensors):
    """The reference model of a Hugging Face config dict (by model_type)."""
    return ARCHITECTURES[config.get("model_type", "llama")](config, tensors)
