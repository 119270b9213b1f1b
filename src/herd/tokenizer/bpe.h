// Byte-pair merging of one pre-tokenized piece (internal to the tokenizer).
//
// Both vocabularies herd reads reduce to one rule: repeatedly merge the adjacent pair with the
// lowest priority, leftmost first. For tiktoken ranks the priority of a pair is the rank of its
// concatenation (tiktoken's byte_pair_merge); for a tokenizer.json it is the merge's line in
// `merges` (HF's BPE::merge_word). `pair(left_id, right_id, joined_bytes)` returns the Merge.
#pragma once

#include <cstdint>
#include <queue>
#include <string_view>
#include <vector>

namespace herd::bpe {

struct Merge {
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t prio = kNone;  // lower merges first
  int32_t id = -1;        // token the merge produces
};

// O(n·m): a scan per merge over a small vector. Best for the short pieces text is made of.
template <typename PairFn>
void merge_linear(std::string_view piece, const int32_t* byte_ids, PairFn&& pair,
                  std::vector<int32_t>& out) {
  struct Part {
    uint32_t start;
    int32_t id;
    Merge m;  // merge of this part with the next one
  };
  const size_t n = piece.size();
  thread_local std::vector<Part> parts;
  parts.resize(n + 1);
  for (size_t i = 0; i < n; ++i)
    parts[i] = {static_cast<uint32_t>(i), byte_ids[static_cast<uint8_t>(piece[i])], {}};
  parts[n] = {static_cast<uint32_t>(n), -1, {}};  // sentinel: end of the last part
  auto compute = [&](size_t i) -> Merge {
    if (i + 2 >= parts.size()) return {};
    return pair(parts[i].id, parts[i + 1].id,
                piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  for (size_t i = 0; i + 1 < n; ++i) parts[i].m = compute(i);
  while (parts.size() > 2) {
    size_t best = 0;
    uint32_t best_prio = Merge::kNone;
    for (size_t i = 0; i + 2 < parts.size(); ++i)
      if (parts[i].m.prio < best_prio) best_prio = parts[i].m.prio, best = i;
    if (best_prio == Merge::kNone) break;
    parts[best].id = parts[best].m.id;
    parts.erase(parts.begin() + best + 1);
    parts[best].m = compute(best);
    if (best > 0) parts[best - 1].m = compute(best - 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) out.push_back(parts[i].id);
}

// O(n log n): a heap of candidate merges over a linked list, for long pieces (long runs of
// spaces, digits-free symbol runs) where the linear scan would be quadratic.
template <typename PairFn>
void merge_heap(std::string_view piece, const int32_t* byte_ids, PairFn&& pair,
                std::vector<int32_t>& out) {
  struct Node {
    uint32_t start;
    int32_t id, prev, next;
    uint32_t version;
    bool alive;
  };
  struct Cand {
    uint32_t prio, start;
    int32_t left, right, merged;
    uint32_t lver, rver;
    bool operator>(const Cand& o) const {
      return prio != o.prio ? prio > o.prio : start > o.start;  // leftmost wins a tie
    }
  };
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<Node> nodes(n);
  for (int32_t i = 0; i < n; ++i)
    nodes[i] = {static_cast<uint32_t>(i),
                byte_ids[static_cast<uint8_t>(piece[i])],
                i - 1,
                i + 1 < n ? i + 1 : -1,
                0,
                true};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t l) {
    if (l < 0) return;
    int32_t r = nodes[l].next;
    if (r < 0) return;
    uint32_t end = nodes[r].next >= 0 ? nodes[nodes[r].next].start : static_cast<uint32_t>(n);
    Merge m = pair(nodes[l].id, nodes[r].id, piece.substr(nodes[l].start, end - nodes[l].start));
    if (m.prio != Merge::kNone)
      heap.push({m.prio, nodes[l].start, l, r, m.id, nodes[l].version, nodes[r].version});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Node& l = nodes[c.left];
    Node& r = nodes[c.right];
    if (!l.alive || !r.alive || l.next != c.right || l.version != c.lver || r.version != c.rver)
      continue;  // stale: one side has merged since
    l.id = c.merged;
    ++l.version;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) nodes[r.next].prev = c.left;
    push(l.prev);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = nodes[i].next) out.push_back(nodes[i].id);
}

}  // namespace herd::bpe
