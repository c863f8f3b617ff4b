// StateSlotPool: free list of recurrent-state slots.
#include "worker/engine/state_slot_pool.h"

#include "base/log.h"

namespace octet {

StateSlotPool::StateSlotPool(int32_t num_slots) : num_slots_(num_slots), in_use_(num_slots > 0 ? num_slots : 0, false) {
  OCTET_CHECK(num_slots >= 0) << "num_slots " << num_slots;
  for (int32_t s = 0; s < num_slots; ++s) free_slots_.push_back(s);
}

std::optional<int32_t> StateSlotPool::Acquire() {
  if (free_slots_.empty()) return std::nullopt;
  const int32_t slot = free_slots_.front();
  free_slots_.pop_front();
  in_use_[slot] = true;
  return slot;
}

void StateSlotPool::Release(int32_t slot) {
  OCTET_CHECK(slot >= 0 && slot < num_slots_) << "unknown state slot " << slot;
  OCTET_CHECK(in_use_[slot]) << "state slot " << slot << " released twice";
  in_use_[slot] = false;
  free_slots_.push_back(slot);
}

}  // namespace octet
