// The family definitions, one file each (model_family.h).
#pragma once

#include "lockstep/partitioner/model_family.h"

namespace lockstep::partitioner::internal {

const ModelFamily& LlamaFamily();    // llama.cc
const ModelFamily& Qwen2Family();    // qwen2.cc
const ModelFamily& MistralFamily();  // mistral.cc
const ModelFamily& Phi3Family();     // phi3.cc

// The tensor names the Llama layout made common: Hugging Face's
// LlamaForCausalLM and llama.cpp's llama architecture (shared by the
// families that copied it).
CheckpointLayout LlamaHfLayout();
CheckpointLayout LlamaGgufLayout();

}  // namespace lockstep::partitioner::internal
