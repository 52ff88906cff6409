#include "completion_text.h"

#include <algorithm>

namespace lockstep::runtime {

CompletionText::CompletionText(const Tokenizer& tokenizer, const Request& request)
    : tokenizer_(&tokenizer), request_(&request) {}

bool CompletionText::Append(int32_t token) {
  if (stopped()) return true;
  const size_t old_size = completion_.size();
  completion_ += tokenizer_->DecodeToken(token);
  // A stop string that ends in the new bytes starts at most size - 1 bytes
  // before them; the earliest start over all stop strings wins.
  for (const std::string& stop : request_->stop) {
    const size_t from = old_size >= stop.size() - 1 ? old_size - (stop.size() - 1) : 0;
    const size_t at = completion_.find(stop, from);
    if (at != std::string::npos) stop_at_ = std::min(stop_at_, at);
  }
  return stopped();
}

std::string CompletionText::Text() const {
  std::string text;
  if (request_->echo) {
    text = request_->prompt_text ? *request_->prompt_text
                                 : tokenizer_->Decode(request_->prompt_tokens,
                                                      /*skip_special_tokens=*/true);
  }
  text.append(completion_, 0, stopped() ? stop_at_ : completion_.size());
  return ValidUtf8(text);
}

}  // namespace lockstep::runtime
