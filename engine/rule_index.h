// The candidate index of a compiled policy: (resource type, action) of a
// request -> a value for each rule whose targets can match it. The values
// are the caller's: the policy uses each rule's record code, which ascends
// with the rule's rank, so that sorted lists are in evaluation order.
//
// Patterns are exact ("order"), prefixes ("reports:*") or "*". Actions are
// few in any real rule set, so action patterns are interned to small ids in
// a table that stays in cache. Resource types are many (one per API
// resource), so the type level is built for a cold cache: one flat
// open-addressing table of 8-byte slots (a 32-bit hash tag and an offset),
// and every type pattern's data is one contiguous node in a single array:
//
//   node: key length | entry count | key bytes | (action id, end)... | values
//
// A lookup is one slot probe and one node read (usually one or two cache
// lines), where a map of maps of vectors costs five or more misses. All the
// slots a request can need are requested before any is read, then all the
// nodes they point to, so that the misses overlap. Prefix lengths are only
// probed when the request's byte at that length ends some prefix. Value
// lists are ascending.
//
// Immutable after Build(); thread-safe to read. Tested by
// tests/rule_index_test.cc and, through the evaluator, by
// tests/differential_test.cc.
#ifndef PDP_ENGINE_RULE_INDEX_H_
#define PDP_ENGINE_RULE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"

namespace pdp::engine {

class RuleIndex {
 public:
  // A run of ascending rule values inside the index.
  struct Span {
    const uint32_t* values;
    uint32_t size;
  };
  using Spans = absl::InlinedVector<Span, 8>;

  class Builder {
   public:
    // Adds a rule's (type pattern, action pattern) pair. Patterns are
    // validated by the compiler: "*", "prefix*" or exact, never empty.
    void Add(std::string_view type_pattern, std::string_view action_pattern,
             uint32_t value);
    RuleIndex Build();

   private:
    struct Posting {
      uint32_t type;
      uint32_t action;
      uint32_t value;
    };
    absl::flat_hash_map<std::string, uint32_t> type_ids_;
    std::vector<std::string> type_patterns_;
    absl::flat_hash_map<std::string, uint32_t> action_ids_;
    std::vector<std::string> action_patterns_;
    std::vector<Posting> postings_;
  };

  RuleIndex() = default;
  RuleIndex(RuleIndex&&) = default;
  RuleIndex& operator=(RuleIndex&&) = default;

  // Appends to `out` the value list of every (type pattern, action pattern)
  // that matches (type, action). Lists may share values. The same as a
  // Lookup's three steps back to back.
  void Collect(std::string_view type, std::string_view action, Spans* out) const;

  // The same lookup in three steps, for a caller that has other work to do
  // while each step's cache misses are served (the evaluator validates the
  // request and interns its roles meanwhile): the constructor requests the
  // slots the type can need, PrefetchNodes() reads them and requests the
  // nodes they point to, Collect() matches the action and reads the nodes.
  // At 100k rules the slots and nodes are usually cache misses; done back
  // to back, each step waits for the one before. Borrows the index and the
  // strings; call the steps in order, each once.
  class Lookup;

  size_t memory_bytes() const;

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  // String -> id/offset, open addressing with linear probing. Each slot is
  // (hash tag << 32) | (value + 1); 0 is empty. Keys are checked by the
  // caller (the node or the pattern table holds the key bytes).
  class Table {
   public:
    void Reserve(size_t count);
    void Insert(uint64_t hash, uint32_t value);
    size_t size() const { return size_; }
    size_t memory_bytes() const { return slots_.capacity() * sizeof(uint64_t); }
    const uint64_t* SlotFor(uint64_t hash) const {
      return slots_.empty() ? nullptr : &slots_[hash & mask_];
    }
    // The value of the first slot with the hash's tag (kNone if none): a
    // guess, to prefetch what Find will check.
    uint32_t Peek(uint64_t hash) const {
      if (slots_.empty()) return kNone;
      const uint32_t tag = static_cast<uint32_t>(hash >> 32);
      for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
        const uint64_t slot = slots_[i];
        if (slot == 0) return kNone;
        if (static_cast<uint32_t>(slot >> 32) == tag) return static_cast<uint32_t>(slot) - 1;
      }
    }
    // Calls match(value) for each slot with the hash's tag until it
    // returns true; returns that value or kNone.
    template <typename Match>
    uint32_t Find(uint64_t hash, Match&& match) const {
      if (slots_.empty()) return kNone;
      const uint32_t tag = static_cast<uint32_t>(hash >> 32);
      for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
        const uint64_t slot = slots_[i];
        if (slot == 0) return kNone;
        if (static_cast<uint32_t>(slot >> 32) == tag) {
          const uint32_t value = static_cast<uint32_t>(slot) - 1;
          if (match(value)) return value;
        }
      }
    }

   private:
    std::vector<uint64_t> slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
  };

  // The distinct lengths of a table's prefix keys, ascending, each with the
  // set of bytes its keys end with: a key's prefix of that length is probed
  // only if its last byte is in the set. Prefixes are usually written up to
  // a delimiter ("svc12:*", "billing/*"), so most lengths are skipped
  // without hashing or a probe.
  class PrefixLengths {
   public:
    void Add(std::string_view prefix);
    void Finish();
    // Calls f(length) for each length whose prefix of `key` may be a key.
    template <typename F>
    void ForEach(std::string_view key, F&& f) const {
      for (const Length& l : lengths_) {
        if (l.length > key.size()) break;
        const unsigned char last = static_cast<unsigned char>(key[l.length - 1]);
        if ((l.last_bytes[last / 64] >> (last % 64)) & 1) f(l.length);
      }
    }
    size_t memory_bytes() const { return lengths_.capacity() * sizeof(Length); }

   private:
    struct Length {
      uint32_t length;
      uint64_t last_bytes[4];
    };
    std::vector<Length> lengths_;
  };

  // Ids of the action patterns matching `action`.
  using ActionIds = absl::InlinedVector<uint32_t, 4>;
  void MatchActions(std::string_view action, ActionIds* ids) const;
  uint32_t FindNode(const Table& table, std::string_view key, uint64_t hash) const;
  uint32_t FindAction(const Table& table, std::string_view key, uint64_t hash) const;
  void AddSpans(uint32_t node, const ActionIds& ids, Spans* out) const;

  // Type level.
  std::vector<uint32_t> nodes_;         // every node, back to back
  Table exact_types_;                   // exact type -> node
  Table prefix_types_;                  // prefix (without '*') -> node
  PrefixLengths type_prefix_lengths_;
  uint32_t any_type_ = kNone;           // the "*" node

  // Action level: patterns interned to ids (small, stays in cache).
  std::vector<std::string> action_keys_;  // by id: exact action or prefix
  Table exact_actions_;
  Table prefix_actions_;
  PrefixLengths action_prefix_lengths_;
  uint32_t any_action_ = kNone;
};

class RuleIndex::Lookup {
 public:
  Lookup(const RuleIndex& index, std::string_view type, std::string_view action);
  void PrefetchNodes();
  void Collect(Spans* out);

 private:
  struct Probe {
    const Table* table;
    uint32_t length;
    uint64_t hash;
  };
  const RuleIndex& index_;
  const std::string_view type_;
  const std::string_view action_;
  absl::InlinedVector<Probe, 8> probes_;
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_RULE_INDEX_H_
