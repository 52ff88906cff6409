#include "lockstep/transport/rank_layout.h"

namespace lockstep::transport {

Result<RankLayout> RankLayout::Create(int tp, int pp) {
  if (tp < 1 || pp < 1) {
    return InvalidArgument("rank layout tp={} pp={}: both must be at least 1", tp, pp);
  }
  return RankLayout(tp, pp);
}

std::vector<std::vector<int>> RankLayout::TpGroups() const {
  std::vector<std::vector<int>> groups(pp_);
  for (int stage = 0; stage < pp_; ++stage) {
    for (int t = 0; t < tp_; ++t) groups[stage].push_back(WorldRank(stage, t));
  }
  return groups;
}

std::vector<std::vector<int>> RankLayout::PpGroups() const {
  std::vector<std::vector<int>> groups(tp_);
  for (int t = 0; t < tp_; ++t) {
    for (int stage = 0; stage < pp_; ++stage) groups[t].push_back(WorldRank(stage, t));
  }
  return groups;
}

}  // namespace lockstep::transport
