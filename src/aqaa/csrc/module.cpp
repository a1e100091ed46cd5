// The one C++ extension aqaa builds, on first use, with torch's extension loader: the LM's decode step
// (aqaa/lm/csrc/decode_step.cpp) and the vocoder's kernels (aqaa/vocoder/csrc/kernels.cpp). One extension of
// several sources, so that its first build compiles them side by side.
#include <torch/extension.h>

void bind_decode_step(pybind11::module_& m);
void bind_vocoder_kernels(pybind11::module_& m);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  bind_decode_step(m);
  bind_vocoder_kernels(m);
}
