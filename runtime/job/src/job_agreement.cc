#include "job_agreement.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "lockstep/job/batch_job.h"

namespace lockstep::runtime {
namespace {

struct AgreementRecord {
  int32_t code = 0;
  int32_t length = 0;
  char message[kAgreementMessageBytes] = {};
};

std::string RankList(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) out += i + 1 == ranks.size() ? " and " : ", ";
    out += std::to_string(ranks[i]);
  }
  return out;
}

}  // namespace

Status Agree(transport::Communicator& world, const Status& mine) {
  AgreementRecord record;
  record.code = static_cast<int32_t>(mine.code());
  const size_t length = std::min(mine.message().size(), kAgreementMessageBytes);
  record.length = static_cast<int32_t>(length);
  std::memcpy(record.message, mine.message().data(), length);
  std::vector<AgreementRecord> all(static_cast<size_t>(world.size()));
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllGather(std::as_bytes(std::span<const AgreementRecord>(&record, 1)),
                      std::as_writable_bytes(std::span<AgreementRecord>(all))));

  // Group failing ranks by message, in rank order of first appearance.
  std::vector<std::pair<std::string, std::vector<int>>> failures;
  StatusCode first_code = StatusCode::kOk;
  for (int r = 0; r < world.size(); ++r) {
    const AgreementRecord& a = all[static_cast<size_t>(r)];
    if (a.code == static_cast<int32_t>(StatusCode::kOk)) continue;
    if (first_code == StatusCode::kOk) first_code = static_cast<StatusCode>(a.code);
    std::string message(
        a.message, static_cast<size_t>(std::clamp<int32_t>(a.length, 0, kAgreementMessageBytes)));
    auto it = std::find_if(failures.begin(), failures.end(),
                           [&](const auto& f) { return f.first == message; });
    if (it == failures.end()) {
      failures.push_back({message, {r}});
    } else {
      it->second.push_back(r);
    }
  }
  if (failures.empty()) return Status::Ok();
  std::string text;
  for (const auto& [message, ranks] : failures) {
    if (!text.empty()) text += "; ";
    if (world.size() == 1) {
      text += message;
    } else {
      text +=
          fmt::format("{} {}: {}", ranks.size() == 1 ? "rank" : "ranks", RankList(ranks), message);
    }
  }
  return Status(first_code, text);
}

Status AgreeOnArguments(transport::Communicator& world, uint64_t fingerprint) {
  std::vector<uint64_t> all(static_cast<size_t>(world.size()));
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllGather(std::as_bytes(std::span<const uint64_t>(&fingerprint, 1)),
                      std::as_writable_bytes(std::span<uint64_t>(all))));
  std::vector<int> differ;
  for (int r = 1; r < world.size(); ++r) {
    if (all[static_cast<size_t>(r)] != all[0]) differ.push_back(r);
  }
  if (differ.empty()) return Status::Ok();
  return InvalidArgument(
      "{} {} started with different arguments than rank 0; every rank of a job must run the same "
      "`lockstep run` command line (check the mpirun/srun command)",
      differ.size() == 1 ? "rank" : "ranks",
      RankList(differ) + (differ.size() == 1 ? " was" : " were"));
}

Status AgreeOnModelFile(transport::Communicator& world, std::string_view path,
                        std::string_view identity) {
  struct Record {
    char text[96] = {};
  };
  Record mine;
  std::memcpy(mine.text, identity.data(), std::min(identity.size(), sizeof(mine.text) - 1));
  std::vector<Record> all(static_cast<size_t>(world.size()));
  LOCKSTEP_RETURN_IF_ERROR(world.AllGather(std::as_bytes(std::span<const Record>(&mine, 1)),
                                           std::as_writable_bytes(std::span<Record>(all))));
  std::vector<int> differ;
  for (int r = 1; r < world.size(); ++r) {
    if (std::strncmp(all[static_cast<size_t>(r)].text, all[0].text, sizeof(Record::text)) != 0) {
      differ.push_back(r);
    }
  }
  if (differ.empty()) return Status::Ok();
  auto shown = [](const Record& r) {
    std::string text(r.text, strnlen(r.text, sizeof(r.text)));
    return text.find(':') == std::string::npos ? "manifest_sha256 " + text.substr(0, 16) + "..."
                                               : text;
  };
  return FailedPrecondition(
      "{} {} opened a different model file than rank 0 at {} ({} on rank 0, {} on rank {}): every "
      "rank must read the same file (copy it again, or put it on a shared file system)",
      differ.size() == 1 ? "rank" : "ranks", RankList(differ), path, shown(all[0]),
      shown(all[static_cast<size_t>(differ[0])]), differ[0]);
}

Status BroadcastBytes(transport::Communicator& world, int root, std::vector<std::byte>* data) {
  uint64_t size = data->size();
  LOCKSTEP_RETURN_IF_ERROR(
      world.Broadcast(std::as_writable_bytes(std::span<uint64_t>(&size, 1)), root));
  data->resize(static_cast<size_t>(size));
  return world.Broadcast(std::span<std::byte>(*data), root);
}

uint64_t ArgumentsFingerprint(const std::vector<std::string_view>& arguments) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view a : arguments) {
    for (char c : a) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
    h ^= 0;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace lockstep::runtime
