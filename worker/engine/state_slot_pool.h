// StateSlotPool: a fixed pool of per-sequence recurrent-state slots (for hybrid models whose linear-attention / SSM
// layers keep one fixed-size state per sequence instead of paged KV).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace octet {

class StateSlotPool {
 public:
  explicit StateSlotPool(int32_t num_slots);

  StateSlotPool(const StateSlotPool&) = delete;
  StateSlotPool& operator=(const StateSlotPool&) = delete;

  // A free slot id in [0, num_slots), or nullopt when all are in use. Slots come back in the order released.
  std::optional<int32_t> Acquire();
  // Returns a slot taken with Acquire; releasing an unknown or free slot is a programmer error (checked).
  void Release(int32_t slot);

  int32_t num_slots() const { return num_slots_; }
  int32_t num_free() const { return static_cast<int32_t>(free_slots_.size()); }

 private:
  int32_t num_slots_;
  std::deque<int32_t> free_slots_;  // taken from the front, returned to the back
  std::vector<bool> in_use_;        // [num_slots]
};

}  // namespace octet
