// Module registration: probe(), Ring, constants and the fd helpers.
#include <napi.h>

#include "addon.h"
#include "constants.h"
#include "fdutil.h"
#include "probe.h"
#include "ring.h"
#include "tcp-progress.h"
#include "sendfile.h"

namespace zcsend {

Napi::Symbol CallbackKey(Napi::Env env) {
  return env.GetInstanceData<AddonData>()->callback_key.Value();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->callback_key = Napi::Persistent(Napi::Symbol::New(env, "zcsend.onCompletions"));
  env.SetInstanceData<AddonData>(data);

  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("Ring", Ring::Define(env));
  exports.Set("constants", MakeConstants(env));
  exports.Set("pipe2", Napi::Function::New(env, Pipe2, "pipe2"));
  exports.Set("setPipeSize", Napi::Function::New(env, SetPipeSize, "setPipeSize"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("tcpBytesAcked", Napi::Function::New(env, TcpBytesAcked, "tcpBytesAcked"));
  exports.Set("sendfile", Napi::Function::New(env, SendFile, "sendfile"));
  exports.Set("sendMore", Napi::Function::New(env, SendMore, "sendMore"));
  exports.Set("uncachedPages", Napi::Function::New(env, UncachedPages, "uncachedPages"));
  return exports;
}

}  // namespace zcsend

namespace {
Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return zcsend::Init(env, exports); }
}  // namespace

NODE_API_MODULE(zcsend_native, InitModule)
