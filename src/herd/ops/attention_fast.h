// The fast path's attention (--precision auto): the same masks and math as ops/attention.h,
// with AVX-512 dot products and value accumulation when the active ISA has them (else the
// reference). Each query's result depends only on that query and the cached keys/values, so it
// is batch-invariant like the reference; it differs from the reference in rounding (FMA, lane
// order), within the tolerance tests/ops/test_attention_fast.cc states.
#pragma once

#include "herd/ops/attention.h"

namespace herd {

void attention_fast(const AttentionShape& s, const float* q, int64_t q_pos, const float* k,
                    const float* v, int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
                    float* out, float* scratch);

}  // namespace herd
