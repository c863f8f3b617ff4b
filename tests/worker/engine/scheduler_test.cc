#include "worker/engine/scheduler.h"

#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/engine/block_manager.h"
#include "worker/engine/state_slot_pool.h"

namespace octet {
namespace {

std::unique_ptr<Sequence> MakeSequence(int64_t id, int32_t num_tokens) {
  std::vector<int32_t> tokens(num_tokens);
  std::iota(tokens.begin(), tokens.end(), 1);
  return std::make_unique<Sequence>(id, "req-" + std::to_string(id), std::move(tokens), SamplingParams{});
}

// What the engine does after the model ran a batch: the new tokens' KV is now cached, and sequences that reached
// their last token get a sampled token appended.
void CompleteStep(const std::vector<ScheduledSequence>& batch, int32_t sampled_token = 7) {
  for (const ScheduledSequence& s : batch) {
    s.seq->set_num_cached_tokens(s.seq->num_cached_tokens() + s.num_new_tokens);
    if (s.sample) s.seq->AppendToken(sampled_token);
  }
}

// Every scheduled sequence has blocks for the tokens it computes this step, and no block is shared.
void ExpectBatchConsistent(const std::vector<ScheduledSequence>& batch, const BlockManager& bm) {
  std::set<int32_t> seen;
  for (const ScheduledSequence& s : batch) {
    EXPECT_GT(s.num_new_tokens, 0) << s.seq->request_id();
    EXPECT_LE(s.seq->num_cached_tokens() + s.num_new_tokens, s.seq->num_tokens()) << s.seq->request_id();
    EXPECT_GE(static_cast<int32_t>(s.seq->block_table().size()) * bm.block_size(),
              s.seq->num_cached_tokens() + s.num_new_tokens)
        << s.seq->request_id();
    EXPECT_EQ(s.seq->status(), SequenceStatus::kRunning) << s.seq->request_id();
    for (int32_t b : s.seq->block_table()) EXPECT_TRUE(seen.insert(b).second) << "block " << b << " shared";
  }
}

TEST(SchedulerTest, PriorityOrdersAdmissionAndPreemption) {
  BlockManager bm(/*num_blocks=*/4, /*block_size=*/4);
  Scheduler scheduler({.max_num_seqs = 1, .max_num_batched_tokens = 64}, bm);
  auto a = MakeSequence(1, 3), b = MakeSequence(2, 3), c = MakeSequence(3, 3), d = MakeSequence(4, 3);
  b->set_priority(5);
  c->set_priority(-1);
  d->set_priority(5);
  for (Sequence* s : {a.get(), b.get(), c.get(), d.get()}) scheduler.Add(s);
  // Lower priority values first; arrival order among equals (b before d).
  std::vector<std::string> order;
  while (!scheduler.empty()) {
    const std::vector<ScheduledSequence> batch = scheduler.Schedule();
    ASSERT_EQ(batch.size(), 1u);
    order.push_back(batch[0].seq->request_id());
    scheduler.Finish(batch[0].seq);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"req-3", "req-1", "req-2", "req-4"}));
}

TEST(SchedulerTest, PreemptionTakesTheWorstPriorityFirst) {
  // 4-token blocks, 3 of them. A low-priority sequence runs first; a high-priority one arrives later. When the
  // high-priority one needs a block and none is free, the older low-priority one gives its blocks back.
  BlockManager bm(/*num_blocks=*/3, /*block_size=*/4);
  Scheduler scheduler({.max_num_seqs = 2, .max_num_batched_tokens = 64}, bm);
  auto low = MakeSequence(1, 4), high = MakeSequence(2, 4);
  low->set_priority(9);
  scheduler.Add(low.get());
  CompleteStep(scheduler.Schedule());  // low: prefill (1 block), samples its 5th token
  scheduler.Add(high.get());
  CompleteStep(scheduler.Schedule());  // low decodes (2nd block), high prefills (3rd block): none left
  const std::vector<ScheduledSequence> batch = scheduler.Schedule();  // high needs a 2nd block
  ASSERT_FALSE(batch.empty());
  EXPECT_EQ(batch[0].seq, high.get());
  EXPECT_EQ(low->status(), SequenceStatus::kWaiting);
  EXPECT_EQ(high->status(), SequenceStatus::kRunning);
  EXPECT_EQ(scheduler.num_preemptions(), 1);
}

TEST(SchedulerTest, EmptySchedulerGivesEmptyBatch) {
  BlockManager bm(8, 4);
  Scheduler scheduler({}, bm);
  EXPECT_TRUE(scheduler.empty());
  EXPECT_TRUE(scheduler.Schedule().empty());
}

TEST(SchedulerTest, PromptThenDecodeOnlyBatches) {
  BlockManager bm(32, 4);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 64}, bm);
  auto a = MakeSequence(1, 5);
  auto b = MakeSequence(2, 3);
  scheduler.Add(a.get());
  scheduler.Add(b.get());

  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq, a.get());
  EXPECT_EQ(batch[0].num_new_tokens, 5);
  EXPECT_TRUE(batch[0].sample);
  EXPECT_EQ(batch[1].seq, b.get());
  EXPECT_EQ(batch[1].num_new_tokens, 3);
  EXPECT_TRUE(batch[1].sample);
  EXPECT_EQ(scheduler.num_running(), 2u);
  EXPECT_EQ(scheduler.num_waiting(), 0u);
  ExpectBatchConsistent(batch, bm);
  CompleteStep(batch);

  // From now on every step is one decode token per sequence, sampled, in admission order.
  for (int step = 0; step < 10; ++step) {
    batch = scheduler.Schedule();
    ASSERT_EQ(batch.size(), 2u) << "step " << step;
    EXPECT_EQ(batch[0].seq, a.get());
    EXPECT_EQ(batch[1].seq, b.get());
    for (const ScheduledSequence& s : batch) {
      EXPECT_EQ(s.num_new_tokens, 1) << "step " << step;
      EXPECT_TRUE(s.sample) << "step " << step;
      EXPECT_EQ(s.seq->num_cached_tokens(), s.seq->num_tokens() - 1) << "step " << step;
    }
    ExpectBatchConsistent(batch, bm);
    CompleteStep(batch);
  }
  EXPECT_EQ(a->num_tokens(), 5 + 11);
  EXPECT_EQ(b->num_tokens(), 3 + 11);
  EXPECT_EQ(a->block_table().size(), 4u);  // 16 tokens in blocks of 4
  EXPECT_EQ(b->block_table().size(), 4u);  // 14 tokens
  EXPECT_EQ(bm.num_free_blocks(), 32 - 8);
  EXPECT_EQ(scheduler.num_preemptions(), 0);
}

TEST(SchedulerTest, ChunkedPrefillRunsInBudgetSizedChunksAndSamplesOnlyAtTheEnd) {
  BlockManager bm(64, 16);
  Scheduler scheduler({.max_num_seqs = 4, .max_num_batched_tokens = 32}, bm);
  auto seq = MakeSequence(1, 100);
  scheduler.Add(seq.get());

  const std::vector<int32_t> expected_chunks = {32, 32, 32, 4};
  for (size_t i = 0; i < expected_chunks.size(); ++i) {
    std::vector<ScheduledSequence> batch = scheduler.Schedule();
    ASSERT_EQ(batch.size(), 1u) << "chunk " << i;
    EXPECT_EQ(batch[0].seq, seq.get());
    EXPECT_EQ(batch[0].seq->num_cached_tokens(), 32 * static_cast<int32_t>(i)) << "chunk " << i;
    EXPECT_EQ(batch[0].num_new_tokens, expected_chunks[i]) << "chunk " << i;
    EXPECT_EQ(batch[0].sample, i + 1 == expected_chunks.size()) << "chunk " << i;
    // Blocks grow with the chunks, not all at once.
    EXPECT_EQ(static_cast<int32_t>(seq->block_table().size()),
              bm.BlocksFor(seq->num_cached_tokens() + expected_chunks[i]))
        << "chunk " << i;
    ExpectBatchConsistent(batch, bm);
    CompleteStep(batch);
  }
  EXPECT_EQ(seq->num_tokens(), 101);
  EXPECT_EQ(seq->num_cached_tokens(), 100);

  // Then a decode.
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].num_new_tokens, 1);
  EXPECT_TRUE(batch[0].sample);
}

TEST(SchedulerTest, DecodesShareTheBudgetWithAPrefillChunk) {
  BlockManager bm(64, 16);
  Scheduler scheduler({.max_num_seqs = 4, .max_num_batched_tokens = 32}, bm);
  auto a = MakeSequence(1, 10);
  scheduler.Add(a.get());
  CompleteStep(scheduler.Schedule());  // a's prompt; a now decodes

  auto b = MakeSequence(2, 100);
  scheduler.Add(b.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq, a.get());
  EXPECT_EQ(batch[0].num_new_tokens, 1);
  EXPECT_EQ(batch[1].seq, b.get());
  EXPECT_EQ(batch[1].num_new_tokens, 31);  // what is left of the budget of 32
  EXPECT_FALSE(batch[1].sample);
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, RunningSequencesGoBeforeWaitingOnes) {
  BlockManager bm(64, 4);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 8}, bm);
  auto first = MakeSequence(1, 6);
  scheduler.Add(first.get());
  CompleteStep(scheduler.Schedule());

  auto second = MakeSequence(2, 6);
  auto third = MakeSequence(3, 20);
  scheduler.Add(second.get());
  scheduler.Add(third.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  // Budget 8: first's decode (1), then second's prompt (6), then 1 token of third.
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].seq, first.get());
  EXPECT_EQ(batch[0].num_new_tokens, 1);
  EXPECT_EQ(batch[1].seq, second.get());
  EXPECT_EQ(batch[1].num_new_tokens, 6);
  EXPECT_EQ(batch[2].seq, third.get());
  EXPECT_EQ(batch[2].num_new_tokens, 1);
  CompleteStep(batch);

  // Now all three run: the two decodes come first, third's prefill gets the rest of the budget.
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].seq, first.get());
  EXPECT_EQ(batch[0].num_new_tokens, 1);
  EXPECT_EQ(batch[1].seq, second.get());
  EXPECT_EQ(batch[1].num_new_tokens, 1);
  EXPECT_EQ(batch[2].seq, third.get());
  EXPECT_EQ(batch[2].num_new_tokens, 6);
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, RunningSequencesAreNotStarvedByANewLongPrompt) {
  BlockManager bm(256, 16);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 16}, bm);
  auto a = MakeSequence(1, 4);
  auto b = MakeSequence(2, 4);
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  CompleteStep(scheduler.Schedule());
  auto big = MakeSequence(3, 1000);
  scheduler.Add(big.get());
  for (int step = 0; step < 5; ++step) {
    std::vector<ScheduledSequence> batch = scheduler.Schedule();
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(batch[0].seq, a.get());
    EXPECT_EQ(batch[1].seq, b.get());
    EXPECT_EQ(batch[2].seq, big.get());
    EXPECT_EQ(batch[2].num_new_tokens, 14);
    CompleteStep(batch);
  }
}

TEST(SchedulerTest, MaxNumSeqsIsRespected) {
  BlockManager bm(64, 4);
  Scheduler scheduler({.max_num_seqs = 3, .max_num_batched_tokens = 1000}, bm);
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (int i = 0; i < 5; ++i) {
    seqs.push_back(MakeSequence(i + 1, 3));
    scheduler.Add(seqs.back().get());
  }
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(batch[i].seq, seqs[i].get());
  EXPECT_EQ(scheduler.num_running(), 3u);
  EXPECT_EQ(scheduler.num_waiting(), 2u);
  EXPECT_EQ(seqs[3]->status(), SequenceStatus::kWaiting);
  EXPECT_TRUE(seqs[3]->block_table().empty());
  CompleteStep(batch);

  for (int step = 0; step < 3; ++step) {
    batch = scheduler.Schedule();
    EXPECT_EQ(batch.size(), 3u);
    EXPECT_EQ(scheduler.num_running(), 3u);
    CompleteStep(batch);
  }

  // A slot frees: exactly the next waiting sequence gets it.
  scheduler.Finish(seqs[1].get());
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].seq, seqs[0].get());
  EXPECT_EQ(batch[1].seq, seqs[2].get());
  EXPECT_EQ(batch[2].seq, seqs[3].get());
  EXPECT_EQ(batch[2].num_new_tokens, 3);
  EXPECT_EQ(scheduler.num_waiting(), 1u);
}

TEST(SchedulerTest, ArrivalOrderKeptWhenTheHeadCannotGetBlocks) {
  BlockManager bm(6, 4);  // 24 token slots
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, bm);
  auto holder = MakeSequence(1, 12);  // 3 blocks
  scheduler.Add(holder.get());
  CompleteStep(scheduler.Schedule());
  ASSERT_EQ(bm.num_free_blocks(), 3);

  auto head = MakeSequence(2, 20);  // 5 blocks: does not fit in the 3 free ones
  auto small = MakeSequence(3, 2);  // 1 block: would fit, but must not overtake
  scheduler.Add(head.get());
  scheduler.Add(small.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, holder.get());
  EXPECT_EQ(scheduler.num_waiting(), 2u);
  EXPECT_TRUE(head->block_table().empty());
  EXPECT_TRUE(small->block_table().empty());
  EXPECT_EQ(small->status(), SequenceStatus::kWaiting);
  CompleteStep(batch);

  // Once the holder finishes, both are admitted in arrival order.
  scheduler.Finish(holder.get());
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq, head.get());
  EXPECT_EQ(batch[0].num_new_tokens, 20);
  EXPECT_EQ(batch[1].seq, small.get());
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, PreemptsTheNewestWhenARunningSequenceNeedsABlock) {
  BlockManager bm(4, 4);  // 16 token slots
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, bm);
  auto older = MakeSequence(1, 8);  // exactly 2 blocks
  auto newer = MakeSequence(2, 8);  // exactly 2 blocks
  scheduler.Add(older.get());
  scheduler.Add(newer.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  CompleteStep(batch);  // both now hold 9 tokens: each decode needs a third block

  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, older.get());
  EXPECT_EQ(batch[0].num_new_tokens, 1);
  EXPECT_TRUE(batch[0].sample);
  ExpectBatchConsistent(batch, bm);
  EXPECT_EQ(scheduler.num_preemptions(), 1);
  EXPECT_EQ(newer->status(), SequenceStatus::kWaiting);
  EXPECT_TRUE(newer->block_table().empty());
  EXPECT_EQ(newer->num_cached_tokens(), 0);
  EXPECT_EQ(newer->num_tokens(), 9);  // its generated token is kept: it is recomputed, not lost
  EXPECT_EQ(older->block_table().size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 1);  // newer's 2 blocks came back, older took one
  EXPECT_EQ(scheduler.num_running(), 1u);
  EXPECT_EQ(scheduler.num_waiting(), 1u);
  CompleteStep(batch);

  // A sequence that arrives after the preemption queues behind the preempted one.
  auto later = MakeSequence(3, 2);
  scheduler.Add(later.get());
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);  // newer needs 3 blocks for its 9 tokens; 1 is free; later may not overtake
  EXPECT_EQ(batch[0].seq, older.get());
  CompleteStep(batch);

  scheduler.Finish(older.get());
  EXPECT_EQ(bm.num_free_blocks(), 4);
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq, newer.get());
  EXPECT_EQ(batch[0].num_new_tokens, 9);  // recomputed from the start, prompt and generated token
  EXPECT_TRUE(batch[0].sample);
  EXPECT_EQ(batch[1].seq, later.get());
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, PreemptsNewestOtherSequencesBeforeTheOneThatNeedsTheBlock) {
  BlockManager bm(6, 4);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, bm);
  auto a = MakeSequence(1, 8);
  auto b = MakeSequence(2, 6);
  auto c = MakeSequence(3, 5);
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  scheduler.Add(c.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 0);  // 2 + 2 + 2 blocks
  CompleteStep(batch);                 // a: 9 tokens (needs a block), b: 7, c: 6 (fit)

  batch = scheduler.Schedule();
  // a needs a block: c (the newest) goes; b keeps running.
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq, a.get());
  EXPECT_EQ(batch[1].seq, b.get());
  EXPECT_EQ(c->status(), SequenceStatus::kWaiting);
  EXPECT_TRUE(c->block_table().empty());
  EXPECT_EQ(b->block_table().size(), 2u);
  EXPECT_EQ(scheduler.num_preemptions(), 1);
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, TheNewestSequenceIsPreemptedItselfWhenItCannotGrow) {
  BlockManager bm(3, 4);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, bm);
  auto a = MakeSequence(1, 7);  // 2 blocks
  auto b = MakeSequence(2, 4);  // 1 block
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  CompleteStep(scheduler.Schedule());  // a: 8 tokens (fits its 2 blocks), b: 5 tokens (needs a second block)
  ASSERT_EQ(bm.num_free_blocks(), 0);

  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, a.get());
  EXPECT_EQ(scheduler.num_preemptions(), 1);
  EXPECT_EQ(b->status(), SequenceStatus::kWaiting);
  EXPECT_TRUE(b->block_table().empty());
  EXPECT_EQ(b->num_cached_tokens(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 1);  // b needs 2 blocks for its 5 tokens: it waits
  CompleteStep(batch);

  scheduler.Finish(a.get());
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, b.get());
  EXPECT_EQ(batch[0].num_new_tokens, 5);
  EXPECT_TRUE(batch[0].sample);
  ExpectBatchConsistent(batch, bm);
}

TEST(SchedulerTest, FinishFreesBlocksOfRunningAndWaitingSequences) {
  BlockManager bm(10, 4);
  Scheduler scheduler({.max_num_seqs = 1, .max_num_batched_tokens = 1000}, bm);
  auto running = MakeSequence(1, 10);
  auto waiting = MakeSequence(2, 10);
  scheduler.Add(running.get());
  scheduler.Add(waiting.get());
  CompleteStep(scheduler.Schedule());
  EXPECT_EQ(bm.num_free_blocks(), 7);
  EXPECT_EQ(scheduler.num_running(), 1u);
  EXPECT_EQ(scheduler.num_waiting(), 1u);

  scheduler.Finish(running.get());
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_TRUE(running->block_table().empty());
  EXPECT_EQ(running->status(), SequenceStatus::kFinished);
  EXPECT_EQ(scheduler.num_running(), 0u);

  scheduler.Finish(waiting.get());  // never scheduled: no blocks, just leaves the queue
  EXPECT_EQ(waiting->status(), SequenceStatus::kFinished);
  EXPECT_TRUE(scheduler.empty());
  EXPECT_TRUE(scheduler.Schedule().empty());
  EXPECT_EQ(bm.num_free_blocks(), 10);
}

TEST(SchedulerTest, FinishOfAPartlyPrefilledSequenceFreesItsBlocks) {
  BlockManager bm(16, 4);
  Scheduler scheduler({.max_num_seqs = 4, .max_num_batched_tokens = 8}, bm);
  auto seq = MakeSequence(1, 40);
  scheduler.Add(seq.get());
  CompleteStep(scheduler.Schedule());
  EXPECT_EQ(bm.num_free_blocks(), 14);
  scheduler.Finish(seq.get());
  EXPECT_EQ(bm.num_free_blocks(), 16);
  EXPECT_TRUE(scheduler.empty());
}

TEST(SchedulerTest, StateSlotsBoundAdmissionAndComeBackOnFinishAndPreemption) {
  BlockManager bm(4, 4);
  StateSlotPool slots(2);
  Scheduler scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, bm, &slots);
  auto a = MakeSequence(1, 8);  // 2 blocks
  auto b = MakeSequence(2, 8);  // 2 blocks
  auto c = MakeSequence(3, 1);  // would fit no block now, and no slot
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  scheduler.Add(c.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_GE(a->state_slot(), 0);
  EXPECT_GE(b->state_slot(), 0);
  EXPECT_NE(a->state_slot(), b->state_slot());
  EXPECT_EQ(c->state_slot(), -1);
  EXPECT_EQ(slots.num_free(), 0);
  CompleteStep(batch);  // a, b: 9 tokens each, a third block each needed

  // a grows: b is preempted and gives its slot back.
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, a.get());
  EXPECT_EQ(b->state_slot(), -1);
  EXPECT_EQ(slots.num_free(), 1);
  CompleteStep(batch);

  scheduler.Finish(a.get());
  EXPECT_EQ(a->state_slot(), -1);
  EXPECT_EQ(slots.num_free(), 2);
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 2u);  // b (readmitted first) and c
  EXPECT_EQ(batch[0].seq, b.get());
  EXPECT_EQ(batch[1].seq, c.get());
  EXPECT_GE(b->state_slot(), 0);
  EXPECT_GE(c->state_slot(), 0);
  EXPECT_EQ(slots.num_free(), 0);

  // With blocks to spare, the slots alone bound admission.
  BlockManager roomy(64, 4);
  StateSlotPool one(1);
  Scheduler bounded({.max_num_seqs = 8, .max_num_batched_tokens = 1000}, roomy, &one);
  auto x = MakeSequence(4, 3);
  auto y = MakeSequence(5, 3);
  bounded.Add(x.get());
  bounded.Add(y.get());
  batch = bounded.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].seq, x.get());
  EXPECT_TRUE(y->block_table().empty());
  EXPECT_EQ(bounded.num_waiting(), 1u);
}

// Many sequences of mixed lengths under memory pressure: every one completes, blocks are never shared, and all
// come back at the end.
TEST(SchedulerTest, MixedWorkloadUnderPressureCompletesAndReturnsAllBlocks) {
  BlockManager bm(12, 4);
  Scheduler scheduler({.max_num_seqs = 6, .max_num_batched_tokens = 10}, bm);
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<int32_t> generated(8, 0);
  const int32_t kMaxNew = 6;
  for (int i = 0; i < 8; ++i) {
    seqs.push_back(MakeSequence(i + 1, 3 + 5 * (i % 4)));
    scheduler.Add(seqs.back().get());
  }
  int steps = 0;
  while (!scheduler.empty()) {
    ASSERT_LT(++steps, 1000) << "no progress";
    std::vector<ScheduledSequence> batch = scheduler.Schedule();
    ASSERT_FALSE(batch.empty()) << "stuck with " << scheduler.num_waiting() << " waiting";
    int32_t tokens = 0;
    for (const ScheduledSequence& s : batch) tokens += s.num_new_tokens;
    EXPECT_LE(tokens, 10);
    EXPECT_LE(static_cast<int32_t>(scheduler.num_running()), 6);
    ExpectBatchConsistent(batch, bm);
    CompleteStep(batch);
    for (const ScheduledSequence& s : batch) {
      if (s.sample && s.seq->num_completion_tokens() >= kMaxNew) scheduler.Finish(s.seq);
    }
  }
  for (const auto& seq : seqs) {
    EXPECT_EQ(seq->num_completion_tokens(), kMaxNew) << seq->request_id();
    EXPECT_EQ(seq->status(), SequenceStatus::kFinished);
  }
  EXPECT_GT(scheduler.num_preemptions(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 12);
}

TEST(SchedulerTest, ACachedPrefixIsSkippedAndGivenBackWhenTheRestDoesNotFit) {
  BlockManager bm(/*num_blocks=*/3, /*block_size=*/4, /*enable_prefix_caching=*/true);
  Scheduler scheduler({.max_num_seqs = 4, .max_num_batched_tokens = 64}, bm);
  auto a = MakeSequence(1, 8);
  scheduler.Add(a.get());
  std::vector<ScheduledSequence> batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].num_new_tokens, 8);
  CompleteStep(batch);
  bm.CacheFullBlocks(*a);
  scheduler.Finish(a.get());
  ASSERT_EQ(bm.num_cached_free_blocks(), 2);

  // Same 8 tokens then 12 more: 2 blocks found, 3 more needed, 1 free. It waits, holding nothing.
  auto b = MakeSequence(2, 20);
  scheduler.Add(b.get());
  EXPECT_TRUE(scheduler.Schedule().empty());
  EXPECT_TRUE(b->block_table().empty());
  EXPECT_EQ(b->num_cached_tokens(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 3);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);
  EXPECT_EQ(scheduler.prefix_query_tokens(), 8);  // only admitted sequences count
  scheduler.Finish(b.get());

  // With room for the rest, it computes only what follows the cached prefix.
  auto c = MakeSequence(3, 11);
  scheduler.Add(c.get());
  batch = scheduler.Schedule();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].num_new_tokens, 3);
  EXPECT_EQ(c->num_cached_tokens(), 8);
  EXPECT_EQ(scheduler.prefix_query_tokens(), 8 + 11);
  EXPECT_EQ(scheduler.prefix_hit_tokens(), 8);
  ExpectBatchConsistent(batch, bm);
}

}  // namespace
}  // namespace octet
