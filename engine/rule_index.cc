// The candidate index; see rule_index.h. Tested by tests/rule_index_test.cc
// and tests/differential_test.cc.
#include "engine/rule_index.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "absl/hash/hash.h"
#include "engine/absl_compat.h"

namespace pdp::engine {
namespace {

uint64_t HashKey(std::string_view key) {
  return absl::Hash<absl::string_view>{}(ToAbsl(key));
}

void Prefetch(const void* p) {
  if (p != nullptr) __builtin_prefetch(p);
}

enum class Kind { kExact, kPrefix, kAny };

Kind KindOf(std::string_view pattern, std::string_view* key) {
  if (pattern == "*") return Kind::kAny;
  if (!pattern.empty() && pattern.back() == '*') {
    *key = pattern.substr(0, pattern.size() - 1);
    return Kind::kPrefix;
  }
  *key = pattern;
  return Kind::kExact;
}

uint32_t KeyWords(uint32_t key_length) { return (key_length + 3) / 4; }

}  // namespace

void RuleIndex::Table::Reserve(size_t count) {
  size_t capacity = 8;
  while (capacity < 2 * count) capacity *= 2;
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  size_ = 0;
}

void RuleIndex::Table::Insert(uint64_t hash, uint32_t value) {
  size_t i = hash & mask_;
  while (slots_[i] != 0) i = (i + 1) & mask_;
  slots_[i] = (hash >> 32 << 32) | (uint64_t{value} + 1);
  ++size_;
}

void RuleIndex::PrefixLengths::Add(std::string_view prefix) {
  const uint32_t length = static_cast<uint32_t>(prefix.size());
  auto it = std::find_if(lengths_.begin(), lengths_.end(),
                         [&](const Length& l) { return l.length == length; });
  if (it == lengths_.end()) {
    lengths_.push_back({length, {0, 0, 0, 0}});
    it = lengths_.end() - 1;
  }
  const unsigned char last = static_cast<unsigned char>(prefix.back());
  it->last_bytes[last / 64] |= uint64_t{1} << (last % 64);
}

void RuleIndex::PrefixLengths::Finish() {
  std::sort(lengths_.begin(), lengths_.end(),
            [](const Length& a, const Length& b) { return a.length < b.length; });
  lengths_.shrink_to_fit();
}

void RuleIndex::Builder::Add(std::string_view type_pattern,
                             std::string_view action_pattern, uint32_t value) {
  auto intern = [](absl::flat_hash_map<std::string, uint32_t>& ids,
                   std::vector<std::string>& patterns, std::string_view pattern) {
    auto [it, inserted] =
        ids.emplace(std::string(pattern), static_cast<uint32_t>(patterns.size()));
    if (inserted) patterns.emplace_back(pattern);
    return it->second;
  };
  postings_.push_back({intern(type_ids_, type_patterns_, type_pattern),
                       intern(action_ids_, action_patterns_, action_pattern), value});
}

RuleIndex RuleIndex::Builder::Build() {
  RuleIndex index;

  // Actions: ids are the interned pattern numbers.
  size_t exact_actions = 0, prefix_actions = 0;
  for (const std::string& pattern : action_patterns_) {
    std::string_view key;
    const Kind kind = KindOf(pattern, &key);
    exact_actions += kind == Kind::kExact;
    prefix_actions += kind == Kind::kPrefix;
  }
  index.exact_actions_.Reserve(exact_actions);
  index.prefix_actions_.Reserve(prefix_actions);
  index.action_keys_.resize(action_patterns_.size());
  for (uint32_t id = 0; id < action_patterns_.size(); ++id) {
    std::string_view key;
    switch (KindOf(action_patterns_[id], &key)) {
      case Kind::kAny:
        index.any_action_ = id;
        break;
      case Kind::kPrefix:
        index.prefix_actions_.Insert(HashKey(key), id);
        index.action_prefix_lengths_.Add(key);
        break;
      case Kind::kExact:
        index.exact_actions_.Insert(HashKey(key), id);
        break;
    }
    index.action_keys_[id] = std::string(key);
  }
  index.action_prefix_lengths_.Finish();

  // Types: one node per pattern, in pattern order.
  std::sort(postings_.begin(), postings_.end(), [](const Posting& a, const Posting& b) {
    return std::tie(a.type, a.action, a.value) < std::tie(b.type, b.action, b.value);
  });
  postings_.erase(std::unique(postings_.begin(), postings_.end(),
                              [](const Posting& a, const Posting& b) {
                                return a.type == b.type && a.action == b.action &&
                                       a.value == b.value;
                              }),
                  postings_.end());
  size_t exact_types = 0, prefix_types = 0, key_words = 0;
  for (const std::string& pattern : type_patterns_) {
    std::string_view key;
    const Kind kind = KindOf(pattern, &key);
    exact_types += kind == Kind::kExact;
    prefix_types += kind == Kind::kPrefix;
    key_words += KeyWords(static_cast<uint32_t>(key.size()));
  }
  index.exact_types_.Reserve(exact_types);
  index.prefix_types_.Reserve(prefix_types);
  std::vector<uint32_t>& nodes = index.nodes_;
  nodes.reserve(type_patterns_.size() * 2 + key_words + postings_.size() * 3);
  for (size_t begin = 0; begin < postings_.size();) {
    const uint32_t type = postings_[begin].type;
    size_t end = begin;
    uint32_t entries = 0;
    for (; end < postings_.size() && postings_[end].type == type; ++end) {
      entries += end == begin || postings_[end].action != postings_[end - 1].action;
    }
    std::string_view key;
    const Kind kind = KindOf(type_patterns_[type], &key);
    const uint32_t key_length = static_cast<uint32_t>(key.size());
    const uint32_t node = static_cast<uint32_t>(nodes.size());
    nodes.push_back(key_length);
    nodes.push_back(entries);
    const size_t key_at = nodes.size();
    nodes.resize(key_at + KeyWords(key_length), 0);
    if (key_length > 0) {
      std::memcpy(reinterpret_cast<char*>(nodes.data() + key_at), key.data(), key_length);
    }
    // (action id, end of its values), then the values.
    for (size_t i = begin; i < end; ++i) {
      const bool last_of_action = i + 1 == end || postings_[i + 1].action != postings_[i].action;
      if (last_of_action) {
        nodes.push_back(postings_[i].action);
        nodes.push_back(static_cast<uint32_t>(i + 1 - begin));
      }
    }
    for (size_t i = begin; i < end; ++i) nodes.push_back(postings_[i].value);
    switch (kind) {
      case Kind::kAny:
        index.any_type_ = node;
        break;
      case Kind::kPrefix:
        index.prefix_types_.Insert(HashKey(key), node);
        index.type_prefix_lengths_.Add(key);
        break;
      case Kind::kExact:
        index.exact_types_.Insert(HashKey(key), node);
        break;
    }
    begin = end;
  }
  index.type_prefix_lengths_.Finish();
  nodes.shrink_to_fit();
  return index;
}

uint32_t RuleIndex::FindNode(const Table& table, std::string_view key,
                             uint64_t hash) const {
  return table.Find(hash, [&](uint32_t node) {
    const uint32_t* n = nodes_.data() + node;
    return n[0] == key.size() &&
           std::memcmp(reinterpret_cast<const char*>(n + 2), key.data(), key.size()) == 0;
  });
}

uint32_t RuleIndex::FindAction(const Table& table, std::string_view key,
                               uint64_t hash) const {
  return table.Find(hash, [&](uint32_t id) { return action_keys_[id] == key; });
}

void RuleIndex::MatchActions(std::string_view action, ActionIds* ids) const {
  if (uint32_t id = FindAction(exact_actions_, action, HashKey(action)); id != kNone) {
    ids->push_back(id);
  }
  action_prefix_lengths_.ForEach(action, [&](uint32_t length) {
    const std::string_view prefix = action.substr(0, length);
    if (uint32_t id = FindAction(prefix_actions_, prefix, HashKey(prefix)); id != kNone) {
      ids->push_back(id);
    }
  });
  if (any_action_ != kNone) ids->push_back(any_action_);
}

void RuleIndex::AddSpans(uint32_t node, const ActionIds& ids, Spans* out) const {
  const uint32_t* n = nodes_.data() + node;
  const uint32_t count = n[1];
  const uint32_t* entries = n + 2 + KeyWords(n[0]);
  const uint32_t* values = entries + 2 * count;
  for (uint32_t id : ids) {
    // Entries ascend by action id: a short scan, or a binary search.
    uint32_t lo = 0, hi = count;
    while (hi - lo > 8) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (entries[2 * mid] <= id) lo = mid; else hi = mid;
    }
    for (uint32_t i = lo; i < hi; ++i) {
      if (entries[2 * i] < id) continue;
      if (entries[2 * i] == id) {
        const uint32_t begin = i == 0 ? 0 : entries[2 * i - 1];
        out->push_back({values + begin, entries[2 * i + 1] - begin});
      }
      break;
    }
  }
}

void RuleIndex::Collect(std::string_view type, std::string_view action,
                        Spans* out) const {
  Lookup lookup(*this, type, action);
  lookup.PrefetchNodes();
  lookup.Collect(out);
}

// Cold-cache order: every slot the type can need is requested at once; then
// (after the caller's other work) the nodes the slots point to, at once;
// then the action ids, from a small table that is likely cached, while the
// nodes arrive; then the nodes are checked and read.
RuleIndex::Lookup::Lookup(const RuleIndex& index, std::string_view type,
                          std::string_view action)
    : index_(index), type_(type), action_(action) {
  probes_.push_back({&index.exact_types_, static_cast<uint32_t>(type.size()), HashKey(type)});
  index.type_prefix_lengths_.ForEach(type, [&](uint32_t length) {
    probes_.push_back({&index.prefix_types_, length, HashKey(type.substr(0, length))});
  });
  for (const Probe& p : probes_) Prefetch(p.table->SlotFor(p.hash));
  if (index.any_type_ != kNone) Prefetch(index.nodes_.data() + index.any_type_);
}

void RuleIndex::Lookup::PrefetchNodes() {
  for (const Probe& p : probes_) {
    if (uint32_t node = p.table->Peek(p.hash); node != kNone) {
      Prefetch(index_.nodes_.data() + node);
    }
  }
}

void RuleIndex::Lookup::Collect(Spans* out) {
  ActionIds ids;
  index_.MatchActions(action_, &ids);
  if (ids.empty()) return;
  for (const Probe& p : probes_) {
    const uint32_t node = index_.FindNode(*p.table, type_.substr(0, p.length), p.hash);
    if (node != kNone) index_.AddSpans(node, ids, out);
  }
  if (index_.any_type_ != kNone) index_.AddSpans(index_.any_type_, ids, out);
}

size_t RuleIndex::memory_bytes() const {
  size_t bytes = sizeof(RuleIndex) + nodes_.capacity() * sizeof(uint32_t) +
                 exact_types_.memory_bytes() + prefix_types_.memory_bytes() +
                 exact_actions_.memory_bytes() + prefix_actions_.memory_bytes() +
                 type_prefix_lengths_.memory_bytes() + action_prefix_lengths_.memory_bytes();
  for (const std::string& key : action_keys_) {
    bytes += sizeof(std::string) + (key.size() > 15 ? key.capacity() + 1 : 0);
  }
  return bytes;
}

}  // namespace pdp::engine
