// lockstep kernels: CPU compute on plain buffers.
//
// Everything here follows the determinism contract (docs/determinism.md,
// docs/determinism.md): every result is bit-identical whatever the batch size,
// the batch neighbours, the number of threads and the instruction set
// (AVX-512, AVX2+FMA or the portable scalar path). To get there:
//   - reductions over a dot-product length K use the canonical segmented tree
//     (see Matmul below), vectorised across outputs and tokens, never across K;
//   - oneTBB splits outputs, heads and tokens, never a reduction;
//   - element-wise math (exp, SiLU, rsqrt) is one algorithm written with
//     explicit FMAs, the same in every SIMD width and in scalar code.
//
// Threads: the functions below use tbb::parallel_for and run inside whatever
// tbb::task_arena the caller entered (the engine owns one sized by --threads).
// They are reentrant; no function keeps state between calls.
//
// This header is the public face; each concept has its own header:
#pragma once

#include "lockstep/kernels/activation.h"
#include "lockstep/kernels/attention.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"
#include "lockstep/kernels/norm.h"
#include "lockstep/kernels/probe.h"
#include "lockstep/kernels/quant_matmul.h"
#include "lockstep/kernels/rope.h"
#include "lockstep/kernels/sampling.h"
