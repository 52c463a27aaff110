#include "sim/trace.hpp"

#include <cstdio>
#include <string>

namespace dtsim::sim {

namespace {
const char* kind_name(SpanKind k) {
  switch (k) {
    case SpanKind::Compute: return "compute";
    case SpanKind::Send: return "send";
    case SpanKind::Recv: return "recv";
    case SpanKind::Wait: return "wait";
    case SpanKind::Update: return "update";
  }
  return "?";
}
}  // namespace

std::string Tracer::chrome_json() const {
  std::string out;
  out.reserve(128 + spans.size() * 140 + hosts.size() * 300);
  out += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":\"simulated\"},\"traceEvents\":[\n";
  char buf[512];
  bool first = true;
  auto emit = [&](const char* s) {
    if (!first) out += ",\n";
    first = false;
    out += s;
  };
  for (size_t h = 0; h < hosts.size(); ++h) {
    std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%zu,\"args\":{\"name\":\"%s\"}}", h,
                  hosts[h].c_str());
    emit(buf);
    std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":%zu,\"args\":{\"sort_index\":%zu}}",
                  h, h);
    emit(buf);
    for (int k = 0; k <= static_cast<int>(SpanKind::Update); ++k) {
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%zu,\"tid\":%d,\"args\":{\"name\":\"%s\"}}", h, k,
                    kind_name(static_cast<SpanKind>(k)));
      emit(buf);
    }
  }
  for (const Span& s : spans) {
    const double ts = s.start * 1e6, dur = (s.end - s.start) * 1e6;
    if (s.kind == SpanKind::Send || s.kind == SpanKind::Recv) {
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"comm\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f,"
                    "\"args\":{\"bytes\":%.0f,\"peer\":\"%s\",\"step\":%lld}}",
                    kind_name(s.kind), s.host, static_cast<int>(s.kind), ts, dur, s.bytes,
                    s.peer >= 0 ? hosts[static_cast<size_t>(s.peer)].c_str() : "", static_cast<long long>(s.step));
    } else {
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f,"
                    "\"args\":{\"step\":%lld}}",
                    kind_name(s.kind), kind_name(s.kind), s.host, static_cast<int>(s.kind), ts, dur,
                    static_cast<long long>(s.step));
    }
    emit(buf);
  }
  out += "\n]}\n";
  return out;
}

}  // namespace dtsim::sim
