// Conversions from JS arguments to C values, done once at the boundary.
// Wrong types throw TypeError (code ERR_INVALID_ARG_TYPE); numbers that are
// not integers or are out of range throw RangeError (code ERR_OUT_OF_RANGE).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace zcsend {

// The bytes of an ArrayBufferView (any TypedArray, Buffer or DataView).
struct ByteView {
  uint8_t* data;
  size_t length;
};

// A validated [offset, offset + length) slice of a ByteView.
struct ByteRange {
  uint8_t* data;
  uint32_t length;
};

[[noreturn]] void ThrowTypeError(Napi::Env env, const char* name, const char* expected);
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* name, const char* message);

// An integer-valued number in [min, max].
int64_t IntValue(Napi::Env env, Napi::Value value, const char* name, int64_t min, int64_t max);

inline int64_t IntArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                      int64_t max) {
  return IntValue(info.Env(), info[index], name, min, max);
}
inline uint32_t U32Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<uint32_t>(IntArg(info, index, name, 0, UINT32_MAX));
}
// A file descriptor, or a registered-file slot index.
inline int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<int>(IntArg(info, index, name, 0, INT32_MAX));
}

ByteView ViewValue(Napi::Env env, Napi::Value value, const char* name);
inline ByteView ViewArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return ViewValue(info.Env(), info[index], name);
}

// info[index] = offset, info[index + 1] = length, both checked against `view`.
ByteRange RangeArgs(const Napi::CallbackInfo& info, size_t index, const ByteView& view);

// Optional integer property of an options object (undefined -> fallback).
int64_t IntOption(Napi::Object options, const char* key, int64_t fallback, int64_t min, int64_t max);

}  // namespace zcsend
