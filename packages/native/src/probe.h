// probe(): what io_uring can do here, and why not when it cannot. Never throws
// for kernel reasons, leaves no descriptor open and caches nothing.
#pragma once

#include <napi.h>

namespace zcsend {

Napi::Value Probe(const Napi::CallbackInfo& info);

}  // namespace zcsend
