// Per-environment (per JS thread) state of the addon.
#pragma once

#include <napi.h>

namespace zcsend {

struct AddonData {
  // Non-enumerable property of each Ring holding its completion callback.
  // Kept on the JS object rather than in a strong native reference, so that
  // an abandoned Ring (and the closure that names it) can be collected.
  Napi::Reference<Napi::Symbol> callback_key;
};

Napi::Symbol CallbackKey(Napi::Env env);

}  // namespace zcsend
