#include "lockstep/partitioner/rope_scaling.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>

#include "lockstep/base/check.h"

namespace lockstep::partitioner {
namespace {

using nlohmann::json;

constexpr std::string_view kSupported = "default, linear, dynamic, yarn, llama3, longrope (or su)";

// Yarn's "inverse dimension formula": the dimension whose wavelength makes
// `rotations` turns in `context` positions (Peng et al. 2023, eq. 16).
double YarnCorrectionDim(double rotations, int dim, double base, double context) {
  return dim * std::log(context / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

// The llama3 divisor of frequency pair i (Meta's Llama 3.1 reference,
// apply_scaling; Hugging Face _compute_llama3_parameters).
double Llama3Divisor(const RopeScaling& s, double inv_freq) {
  const double wavelen = 2.0 * std::numbers::pi / inv_freq;
  const double context = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = context / s.low_freq_factor;
  const double high_wavelen = context / s.high_freq_factor;
  if (wavelen < high_wavelen) return 1.0;
  if (wavelen > low_wavelen) return s.factor;
  const double smooth =
      (context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return 1.0 / ((1.0 - smooth) / s.factor + smooth);
}

// Yarn's multiplier of inv_freq_i: (1 - e_i) / factor + e_i.
double YarnMultiplier(const RopeScaling& s, double theta, int head_dim, int i) {
  const double context = static_cast<double>(s.original_max_position_embeddings);
  double low = YarnCorrectionDim(s.beta_fast, head_dim, theta, context);
  double high = YarnCorrectionDim(s.beta_slow, head_dim, theta, context);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(head_dim - 1));
  if (low == high) high += 0.001;  // no singularity
  const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
  const double extrapolation = 1.0 - ramp;
  return (1.0 - extrapolation) / s.factor + extrapolation;
}

// Yarn's default attention factor (the paper's sqrt(1/t) = 0.1 ln(s) + 1),
// with DeepSeek's mscale / mscale_all_dim variant.
double YarnMscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

// Reads rope_scaling fields with messages that name them.
class ScalingFields {
 public:
  ScalingFields(const json& object, std::string_view source, std::string_view type)
      : object_(object), source_(source), type_(type) {}

  bool Has(const char* field) const {
    auto it = object_.find(field);
    return it != object_.end() && !it->is_null();
  }
  Result<double> Number(const char* field, std::optional<double> fallback) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) {
      if (fallback) return *fallback;
      return InvalidArgument("{}: rope_scaling.{} is missing (rope_scaling.type \"{}\" needs it)",
                             source_, field, type_);
    }
    if (!it->is_number()) {
      return InvalidArgument("{}: rope_scaling.{} must be a number, got {}", source_, field,
                             it->dump());
    }
    return it->get<double>();
  }
  Result<std::vector<double>> Vector(const char* field, int head_dim) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) {
      return InvalidArgument("{}: rope_scaling.{} is missing (rope_scaling.type \"{}\" needs it)",
                             source_, field, type_);
    }
    if (!it->is_array()) {
      return InvalidArgument("{}: rope_scaling.{} must be a list of numbers, got {}", source_,
                             field, it->dump());
    }
    std::vector<double> values;
    for (const json& v : *it) {
      if (!v.is_number()) {
        return InvalidArgument("{}: rope_scaling.{} must be a list of numbers, got {}", source_,
                               field, v.dump());
      }
      values.push_back(v.get<double>());
    }
    if (static_cast<int64_t>(values.size()) != head_dim / 2) {
      return InvalidArgument("{}: rope_scaling.{} has {} entries, expected head_dim/2 = {}",
                             source_, field, values.size(), head_dim / 2);
    }
    return values;
  }

 private:
  const json& object_;
  std::string_view source_;
  std::string_view type_;
};

// A positive integer field of `object` (rope_scaling or the config), or 0.
Result<int64_t> OptionalPositiveInt(const json& object, const char* field, std::string_view source,
                                    std::string_view path) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return int64_t{0};
  const bool integral =
      it->is_number_integer() ||
      (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>());
  if (!integral || it->get<double>() <= 0 || it->get<double>() > 1e15) {
    return InvalidArgument("{}: {} must be a positive integer, got {}", source, path, it->dump());
  }
  return static_cast<int64_t>(it->get<double>());
}

}  // namespace

std::string_view RopeScalingTypeName(RopeScalingType type) {
  switch (type) {
    case RopeScalingType::kNone:
      return "none";
    case RopeScalingType::kLinear:
      return "linear";
    case RopeScalingType::kDynamic:
      return "dynamic";
    case RopeScalingType::kYarn:
      return "yarn";
    case RopeScalingType::kLlama3:
      return "llama3";
    case RopeScalingType::kLongRope:
      return "longrope";
  }
  return "?";
}

Result<RopeScalingType> ParseRopeScalingType(std::string_view name) {
  for (RopeScalingType t :
       {RopeScalingType::kNone, RopeScalingType::kLinear, RopeScalingType::kDynamic,
        RopeScalingType::kYarn, RopeScalingType::kLlama3, RopeScalingType::kLongRope}) {
    if (RopeScalingTypeName(t) == name) return t;
  }
  return InvalidArgument(
      "rope scaling type \"{}\" is not supported (supported: none, linear, "
      "dynamic, yarn, llama3, longrope)",
      name);
}

Status ValidateRopeScaling(const RopeScaling& s, int head_dim) {
  if (!s.active()) return Status::Ok();
  const std::string_view type = RopeScalingTypeName(s.type);
  auto positive = [&](double v, const char* field) -> Status {
    if (!(v > 0.0) || !std::isfinite(v)) {
      return InvalidArgument("rope_scaling.{} must be a positive number, got {} (type \"{}\")",
                             field, v, type);
    }
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(positive(s.factor, "factor"));
  LOCKSTEP_RETURN_IF_ERROR(positive(s.attention_factor, "attention_factor"));
  const bool needs_context = s.type != RopeScalingType::kLinear &&
                             !(s.type == RopeScalingType::kLlama3 && !s.frequency_factors.empty());
  if (needs_context && s.original_max_position_embeddings <= 0) {
    return InvalidArgument(
        "rope_scaling.original_max_position_embeddings must be positive for type \"{}\", got {}",
        type, s.original_max_position_embeddings);
  }
  auto vector = [&](const std::vector<double>& v, const char* field) -> Status {
    if (static_cast<int64_t>(v.size()) != head_dim / 2) {
      return InvalidArgument("rope_scaling.{} has {} entries, expected head_dim/2 = {}", field,
                             v.size(), head_dim / 2);
    }
    for (double x : v) LOCKSTEP_RETURN_IF_ERROR(positive(x, field));
    return Status::Ok();
  };
  switch (s.type) {
    case RopeScalingType::kLlama3:
      if (!s.frequency_factors.empty()) return vector(s.frequency_factors, "frequency_factors");
      LOCKSTEP_RETURN_IF_ERROR(positive(s.low_freq_factor, "low_freq_factor"));
      LOCKSTEP_RETURN_IF_ERROR(positive(s.high_freq_factor, "high_freq_factor"));
      if (!(s.high_freq_factor > s.low_freq_factor)) {
        return InvalidArgument(
            "rope_scaling.high_freq_factor ({}) must be greater than low_freq_factor ({})",
            s.high_freq_factor, s.low_freq_factor);
      }
      break;
    case RopeScalingType::kYarn:
      LOCKSTEP_RETURN_IF_ERROR(positive(s.beta_fast, "beta_fast"));
      LOCKSTEP_RETURN_IF_ERROR(positive(s.beta_slow, "beta_slow"));
      break;
    case RopeScalingType::kLongRope:
      LOCKSTEP_RETURN_IF_ERROR(vector(s.short_factor, "short_factor"));
      LOCKSTEP_RETURN_IF_ERROR(vector(s.long_factor, "long_factor"));
      break;
    case RopeScalingType::kDynamic:
      if (head_dim <= 2) {
        return InvalidArgument("rope_scaling.type \"dynamic\" needs head_dim > 2, got {}",
                               head_dim);
      }
      break;
    default:
      break;
  }
  return Status::Ok();
}

int64_t RopeContextLength(const RopeScaling& s, int64_t max_position_embeddings) {
  switch (s.type) {
    case RopeScalingType::kLinear:
    case RopeScalingType::kDynamic:
      return std::max(max_position_embeddings,
                      static_cast<int64_t>(
                          std::floor(static_cast<double>(max_position_embeddings) * s.factor)));
    case RopeScalingType::kYarn:
      return std::max(max_position_embeddings,
                      static_cast<int64_t>(std::floor(
                          static_cast<double>(s.original_max_position_embeddings) * s.factor)));
    default:
      return max_position_embeddings;
  }
}

bool RopeDependsOnPosition(const RopeScaling& s) {
  return s.type == RopeScalingType::kDynamic || s.type == RopeScalingType::kLongRope;
}

void RopeInverseFrequencies(const RopeScaling& s, double theta, int head_dim, int64_t position,
                            std::span<double> out) {
  const int half = head_dim / 2;
  LOCKSTEP_CHECK(static_cast<int>(out.size()) == half, "{} frequencies for head_dim {}", out.size(),
                 head_dim);
  double base = theta;
  if (s.type == RopeScalingType::kDynamic) {
    // NTK-aware base for a sequence of s = max(position + 1, L) positions.
    const double context = static_cast<double>(s.original_max_position_embeddings);
    const double length = std::max(static_cast<double>(position) + 1.0, context);
    if (length > context) {
      base = theta * std::pow(s.factor * length / context - (s.factor - 1.0),
                              static_cast<double>(head_dim) / (head_dim - 2));
    }
  }
  for (int i = 0; i < half; ++i) {
    // theta^(-2i/d): the expression the unscaled table has always used.
    const double inv_freq = std::pow(base, -2.0 * i / head_dim);
    switch (s.type) {
      case RopeScalingType::kNone:
      case RopeScalingType::kDynamic:
        out[i] = inv_freq;
        break;
      case RopeScalingType::kLinear:
        out[i] = inv_freq / s.factor;
        break;
      case RopeScalingType::kYarn:
        out[i] = inv_freq * YarnMultiplier(s, theta, head_dim, i);
        break;
      case RopeScalingType::kLlama3:
        out[i] = inv_freq / (s.frequency_factors.empty() ? Llama3Divisor(s, inv_freq)
                                                         : s.frequency_factors[i]);
        break;
      case RopeScalingType::kLongRope:
        out[i] = inv_freq / (position < s.original_max_position_embeddings ? s.short_factor[i]
                                                                           : s.long_factor[i]);
        break;
    }
  }
}

Result<RopeScaling> RopeScalingFromHfJson(const json& config, std::string_view source,
                                          int64_t max_position_embeddings, int head_dim) {
  RopeScaling s;
  auto it = config.find("rope_scaling");
  if (it == config.end() || it->is_null()) return s;
  const json& rope = *it;
  if (!rope.is_object()) {
    return InvalidArgument("{}: rope_scaling must be an object or null, got {}", source,
                           rope.dump());
  }
  std::string type;
  for (const char* key : {"type", "rope_type"}) {  // "rope_type" wins, as in transformers
    if (auto t = rope.find(key); t != rope.end() && !t->is_null()) {
      if (!t->is_string()) {
        return InvalidArgument("{}: rope_scaling.{} must be a string, got {}", source, key,
                               t->dump());
      }
      type = t->get<std::string>();
    }
  }
  if (type.empty()) {
    return InvalidArgument("{}: rope_scaling has no \"rope_type\" (or \"type\") field", source);
  }
  ScalingFields f(rope, source, type);
  LOCKSTEP_ASSIGN_OR_RETURN(const int64_t scaling_context,
                            OptionalPositiveInt(rope, "original_max_position_embeddings", source,
                                                "rope_scaling.original_max_position_embeddings"));
  if (type == "default") return s;
  if (type == "linear") {
    s.type = RopeScalingType::kLinear;
    LOCKSTEP_ASSIGN_OR_RETURN(s.factor, f.Number("factor", std::nullopt));
  } else if (type == "dynamic") {
    // transformers uses max_position_embeddings as the original context.
    s.type = RopeScalingType::kDynamic;
    LOCKSTEP_ASSIGN_OR_RETURN(s.factor, f.Number("factor", std::nullopt));
    s.original_max_position_embeddings = max_position_embeddings;
  } else if (type == "yarn") {
    s.type = RopeScalingType::kYarn;
    LOCKSTEP_ASSIGN_OR_RETURN(s.factor, f.Number("factor", std::nullopt));
    s.original_max_position_embeddings =
        scaling_context > 0 ? scaling_context : max_position_embeddings;
    LOCKSTEP_ASSIGN_OR_RETURN(s.beta_fast, f.Number("beta_fast", 32.0));
    LOCKSTEP_ASSIGN_OR_RETURN(s.beta_slow, f.Number("beta_slow", 1.0));
    if (auto t = rope.find("truncate"); t != rope.end() && !t->is_null()) {
      if (!t->is_boolean()) {
        return InvalidArgument("{}: rope_scaling.truncate must be true or false, got {}", source,
                               t->dump());
      }
      s.truncate = t->get<bool>();
    }
    if (f.Has("attention_factor")) {
      LOCKSTEP_ASSIGN_OR_RETURN(s.attention_factor, f.Number("attention_factor", std::nullopt));
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(const double mscale, f.Number("mscale", 0.0));
      LOCKSTEP_ASSIGN_OR_RETURN(const double mscale_all_dim, f.Number("mscale_all_dim", 0.0));
      s.attention_factor = mscale != 0.0 && mscale_all_dim != 0.0
                               ? YarnMscale(s.factor, mscale) / YarnMscale(s.factor, mscale_all_dim)
                               : YarnMscale(s.factor, 1.0);
    }
  } else if (type == "llama3") {
    s.type = RopeScalingType::kLlama3;
    if (f.Has("frequency_factors")) {  // lockstep's own form (a GGUF's rope_freqs)
      LOCKSTEP_ASSIGN_OR_RETURN(s.frequency_factors, f.Vector("frequency_factors", head_dim));
      LOCKSTEP_ASSIGN_OR_RETURN(s.factor, f.Number("factor", 1.0));
      s.original_max_position_embeddings = scaling_context;
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(s.factor, f.Number("factor", std::nullopt));
      LOCKSTEP_ASSIGN_OR_RETURN(s.low_freq_factor, f.Number("low_freq_factor", std::nullopt));
      LOCKSTEP_ASSIGN_OR_RETURN(s.high_freq_factor, f.Number("high_freq_factor", std::nullopt));
      if (scaling_context <= 0) {
        return InvalidArgument(
            "{}: rope_scaling.original_max_position_embeddings is missing (rope_scaling.type "
            "\"llama3\" needs it)",
            source);
      }
      s.original_max_position_embeddings = scaling_context;
    }
  } else if (type == "longrope" || type == "su") {
    s.type = RopeScalingType::kLongRope;
    LOCKSTEP_ASSIGN_OR_RETURN(s.short_factor, f.Vector("short_factor", head_dim));
    LOCKSTEP_ASSIGN_OR_RETURN(s.long_factor, f.Vector("long_factor", head_dim));
    // Phi-3 keeps the pretrained context at the top level and derives the
    // attention factor from the ratio (transformers' longrope does the same).
    LOCKSTEP_ASSIGN_OR_RETURN(const int64_t top_context,
                              OptionalPositiveInt(config, "original_max_position_embeddings",
                                                  source, "original_max_position_embeddings"));
    double factor = 1.0;
    if (top_context > 0) {
      s.original_max_position_embeddings = top_context;
      factor = static_cast<double>(max_position_embeddings) / static_cast<double>(top_context);
    } else {
      s.original_max_position_embeddings =
          scaling_context > 0 ? scaling_context : max_position_embeddings;
      LOCKSTEP_ASSIGN_OR_RETURN(factor, f.Number("factor", 1.0));
    }
    s.factor = std::max(factor, 1.0);
    if (f.Has("attention_factor")) {
      LOCKSTEP_ASSIGN_OR_RETURN(s.attention_factor, f.Number("attention_factor", std::nullopt));
    } else {
      s.attention_factor =
          factor <= 1.0
              ? 1.0
              : std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(
                                                       s.original_max_position_embeddings)));
    }
  } else {
    return InvalidArgument("{}: rope_scaling.type \"{}\" is not supported (supported: {})", source,
                           type, kSupported);
  }
  if (Status valid = ValidateRopeScaling(s, head_dim); !valid.ok()) {
    return valid.WithContext(source);
  }
  return s;
}

json RopeScalingToHfJson(const RopeScaling& s) {
  if (!s.active()) return nullptr;
  json j;
  j["rope_type"] = RopeScalingTypeName(s.type);
  j["factor"] = s.factor;
  if (s.original_max_position_embeddings > 0) {
    j["original_max_position_embeddings"] = s.original_max_position_embeddings;
  }
  switch (s.type) {
    case RopeScalingType::kYarn:
      j["beta_fast"] = s.beta_fast;
      j["beta_slow"] = s.beta_slow;
      j["truncate"] = s.truncate;
      j["attention_factor"] = s.attention_factor;
      break;
    case RopeScalingType::kLlama3:
      if (!s.frequency_factors.empty()) {
        j["frequency_factors"] = s.frequency_factors;
      } else {
        j["low_freq_factor"] = s.low_freq_factor;
        j["high_freq_factor"] = s.high_freq_factor;
      }
      break;
    case RopeScalingType::kLongRope:
      j["short_factor"] = s.short_factor;
      j["long_factor"] = s.long_factor;
      j["attention_factor"] = s.attention_factor;
      break;
    default:
      break;
  }
  return j;
}

}  // namespace lockstep::partitioner
