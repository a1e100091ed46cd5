// AQAA_CPU_CLONES: compile a loop-heavy function for AVX-512, AVX2 and plain x86-64, chosen at load time by the
// CPU (GCC's target_clones), so one build runs vectorised on any x86-64 machine.
#pragma once

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define AQAA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AQAA_CPU_CLONES
#endif
