#include "args.h"

#include <cmath>
#include <string>

#include "compat.h"

namespace zcsend {

namespace {

[[noreturn]] void ThrowWithCode(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  throw error;
}

}  // namespace

void ThrowTypeError(Napi::Env env, const char* name, const char* expected) {
  std::string message = std::string("The \"") + name + "\" argument must be " + expected;
  ThrowWithCode(Napi::TypeError::New(env, message), "ERR_INVALID_ARG_TYPE");
}

void ThrowRangeError(Napi::Env env, const char* name, const char* message) {
  std::string text = std::string("The value of \"") + name + "\" is out of range. " + message;
  ThrowWithCode(Napi::RangeError::New(env, text), "ERR_OUT_OF_RANGE");
}

int64_t IntValue(Napi::Env env, Napi::Value value, const char* name, int64_t min, int64_t max) {
  if (!value.IsNumber()) ThrowTypeError(env, name, "of type number");
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d) ThrowRangeError(env, name, "It must be an integer.");
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    std::string message = "It must be >= " + std::to_string(min) + " and <= " + std::to_string(max) + ".";
    ThrowRangeError(env, name, message.c_str());
  }
  return static_cast<int64_t>(d);
}

ByteView ViewValue(Napi::Env env, Napi::Value value, const char* name) {
  void* data = nullptr;
  size_t length = 0;
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t elements = 0;
    napi_status status = napi_get_typedarray_info(env, value, &type, &elements, &data, nullptr, nullptr);
    NAPI_THROW_IF_FAILED(env, status, ByteView{});
    size_t element_size = 1;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array:
        element_size = 2;
        break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array:
        element_size = 4;
        break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array:
        element_size = 8;
        break;
      default:
        element_size = 1;
        break;
    }
    length = elements * element_size;
  } else if (value.IsDataView()) {
    napi_status status = napi_get_dataview_info(env, value, &length, &data, nullptr, nullptr);
    NAPI_THROW_IF_FAILED(env, status, ByteView{});
  } else {
    ThrowTypeError(env, name, "an ArrayBufferView (Buffer, TypedArray or DataView)");
  }
  // A detached buffer reports no data and no length: every non-empty range is rejected.
  if (data == nullptr) length = 0;
  return ByteView{static_cast<uint8_t*>(data), length};
}

ByteRange RangeArgs(const Napi::CallbackInfo& info, size_t index, const ByteView& view) {
  Napi::Env env = info.Env();
  const int64_t offset = IntArg(info, index, "offset", 0, INT64_C(1) << 53);
  const int64_t length = IntArg(info, index + 1, "length", 0, static_cast<int64_t>(kMaxTransfer));
  if (static_cast<uint64_t>(offset) > view.length ||
      static_cast<uint64_t>(length) > view.length - static_cast<uint64_t>(offset)) {
    std::string message = "offset + length (" + std::to_string(offset) + " + " + std::to_string(length) +
                          ") exceeds the buffer's byteLength (" + std::to_string(view.length) + ").";
    ThrowRangeError(env, "length", message.c_str());
  }
  uint8_t* data = view.data == nullptr ? nullptr : view.data + offset;
  return ByteRange{data, static_cast<uint32_t>(length)};
}

int64_t IntOption(Napi::Object options, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  return IntValue(options.Env(), value, key, min, max);
}

}  // namespace zcsend
