// Counts in messages people read: "1 rank", "2 ranks", "1 micro-batch",
// "3 micro-batches", and rank ranges: "rank 0", "ranks 0-3".
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep {

// "<n> <noun>" with the noun in the plural unless n is 1. The plural adds
// "es" after s, x, z, ch and sh ("batches"), else "s".
std::string Plural(int64_t n, std::string_view noun);
// The same with an irregular plural: Plural(n, "entry", "entries").
std::string Plural(int64_t n, std::string_view singular, std::string_view plural);

// "rank 3" for first == last, else "ranks 3-5" (`noun` in the singular).
std::string Range(std::string_view noun, int64_t first, int64_t last);

// A large count with an SI suffix: "950", "4.4 k", "6.7 M", "6.74 B" (B for
// billion, as model sizes are quoted).
std::string FormatCount(double n);

}  // namespace lockstep
